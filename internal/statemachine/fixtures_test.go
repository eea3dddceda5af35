package statemachine

import (
	"testing"
	"time"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var t0 = time.Date(2024, 5, 6, 10, 0, 0, 0, time.UTC)

const (
	vOld = "1.19.0"
	vNew = "1.20.0"
	vFix = "1.20.1"
)

type opt func(*v2.BottlerocketShadow)

func shadow(opts ...opt) *v2.BottlerocketShadow {
	b := &v2.BottlerocketShadow{ObjectMeta: metav1.ObjectMeta{Name: "brs-n1"}, Spec: v2.BottlerocketShadowSpec{State: v2.StateIdle}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// desired sets the spec: state, set at t0+at, towards version (nil when "").
func desired(state v2.State, at time.Duration, version string) opt {
	return func(b *v2.BottlerocketShadow) { b.Spec = specOf(state, at, version) }
}

func specOf(state v2.State, at time.Duration, version string) v2.BottlerocketShadowSpec {
	s := v2.BottlerocketShadowSpec{State: state}
	if at >= 0 {
		s.StateTransitionTimestamp = ts(t0.Add(at))
	}
	if version != "" {
		s.Version = &version
	}
	return s
}

// reported sets the status: state, current and target versions.
func reported(state v2.State, current, target string) opt {
	return func(b *v2.BottlerocketShadow) {
		b.Status = &v2.BottlerocketShadowStatus{CurrentState: state, CurrentVersion: current, TargetVersion: target}
	}
}

// crashed sets the crash count, failure time (t0+at) and failure reason of the status.
func crashed(count uint32, at time.Duration, reason string) opt {
	return func(b *v2.BottlerocketShadow) {
		b.Status.CrashCount = count
		b.Status.StateTransitionFailureTimestamp = ts(t0.Add(at))
		b.Status.FailureReason = reason
	}
}

func withRecord(r Record) opt {
	return func(b *v2.BottlerocketShadow) {
		b.Annotations = map[string]string{RecordAnnotation: r.String()}
	}
}

var healthy = NodeFacts{Ready: true, ReadySince: t0.Add(-time.Hour), PodsReady: true}

const noTS = time.Duration(-1)

// TestFixtures checks that the builders make what their comments promise, which every table
// relies on.
func TestFixtures(t *testing.T) {
	b := shadow(desired(staged, time.Minute, vNew), reported(idle, vOld, vNew), crashed(2, 0, "AgentError"))
	if b.Spec.State != staged || !b.Spec.StateTransitionTimestamp.Time.Equal(t0.Add(time.Minute)) || *b.Spec.Version != vNew {
		t.Errorf("desired() spec = %+v", b.Spec)
	}
	if st := b.Status; st.CurrentState != idle || st.CurrentVersion != vOld || st.TargetVersion != vNew || st.CrashCount != 2 || !st.StateTransitionFailureTimestamp.Time.Equal(t0) {
		t.Errorf("reported()/crashed() status = %+v", st)
	}
	if s := specOf(idle, noTS, ""); s.StateTransitionTimestamp != nil || s.Version != nil {
		t.Errorf("specOf(idle, noTS, \"\") = %+v, want no timestamp and no version", s)
	}
	if r := RecordFromAnnotations(shadow(withRecord(Record{Count: 1, At: t0, Reason: ReasonMonitoringFailed})).Annotations); r.Count != 1 || !r.At.Equal(t0) {
		t.Errorf("withRecord() round trip = %+v", r)
	}
}
