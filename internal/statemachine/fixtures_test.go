package statemachine

import (
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
)

// The fixture's time and versions, under the tables' short names: durations are offsets from
// t0; nodes run vOld and are offered vNew; vFix follows vNew.
var t0 = fixture.T0

const (
	vOld = fixture.Old
	vNew = fixture.New
	vFix = fixture.Fix
)

// shadow returns the shadow of node n1 with opts: by default Idle on vOld, offered vNew.
func shadow(opts ...fixture.ShadowOpt) *v2.BottlerocketShadow { return fixture.Shadow("n1", opts...) }

// untimed removes the spec's transition timestamp.
func untimed() fixture.ShadowOpt {
	return func(b *v2.BottlerocketShadow) { b.Spec.StateTransitionTimestamp = nil }
}

// withRecord sets the controller's failure Record.
func withRecord(r Record) fixture.ShadowOpt { return fixture.Annotate(RecordAnnotation, r.String()) }

// defaultSpec is the spec of a shadow nothing happens to: Idle, no timestamp, no version.
var defaultSpec = v2.BottlerocketShadowSpec{State: idle}

// healthy is what FactsOf sees of the fixture's Node: Ready since an hour before t0.
var healthy = FactsOf(fixture.Node("n1"), nil)

// TestFixtures checks that the adapters make what their comments promise, which every table
// relies on.
func TestFixtures(t *testing.T) {
	if b := shadow(); b.Name != v2.ShadowName("n1") || b.Spec != defaultSpec || b.Status.CurrentState != idle {
		t.Errorf("shadow() = %+v / %+v, want an Idle shadow of n1 with the default spec", b.Spec, b.Status)
	}
	if b := shadow(fixture.Desired(staged, 0, vNew), untimed()); b.Spec.StateTransitionTimestamp != nil || b.Spec.State != staged {
		t.Errorf("untimed() spec = %+v", b.Spec)
	}
	if healthy != (NodeFacts{Ready: true, ReadySince: t0.Add(-time.Hour), PodsReady: true}) {
		t.Errorf("healthy = %+v", healthy)
	}
	if r := RecordFromAnnotations(shadow(withRecord(Record{Count: 1, At: t0, Reason: ReasonMonitoringFailed})).Annotations); r.Count != 1 || !r.At.Equal(t0) {
		t.Errorf("withRecord() round trip = %+v", r)
	}
}
