package integration

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv1 "github.com/bottlerocket-os/brupop-go/api/v1"
	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// maxCrashCount is the largest crash_count upstream's u32 holds.
const maxCrashCount = math.MaxUint32

// TestShadowWithUpstreamsLargestCrashCountRoundTripsThroughV1AndV2 writes shadows with
// crash_count 4294967295 through v2, and through v1 (which has no crash_count: its status is set
// through v2), on kube-apiserver with our conversion webhook, and reads each back in both
// versions, then updates each through v1 as a v1 client would, the object and its status: the
// count (and ErrorReset, which v1 reads as MonitoringUpdate) survives every step (docs/install.md,
// "What differs from upstream's CRD").
func TestShadowWithUpstreamsLargestCrashCountRoundTripsThroughV1AndV2(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, nil)
	pointConversionAt(t, ts.URL+agentapi.PathConvert, ts.CAPEM)
	failedAt := metav1.NewTime(time.Date(2022, 7, 9, 19, 32, 38, 0, time.UTC))
	status := brupopv2.BottlerocketShadowStatus{CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: brupopv2.StateErrorReset,
		CrashCount: maxCrashCount, StateTransitionFailureTimestamp: &failedAt, FailureReason: "DrainTimeout: 1 pod left"}

	// Written as v2.
	fromV2 := &brupopv2.BottlerocketShadow{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "brs-v2"},
		Spec: brupopv2.BottlerocketShadowSpec{State: brupopv2.StateIdle, StateTransitionTimestamp: &failedAt, Version: ptr.To("1.21.0")}}
	if err := c.Create(ctx, fromV2); err != nil {
		t.Fatal(err)
	}
	fromV2.Status = status.DeepCopy()
	if err := c.Status().Update(ctx, fromV2); err != nil {
		t.Fatalf("status with crash_count %d: %v", uint32(maxCrashCount), err)
	}

	// Written as v1, then its status, which v1 cannot express, through v2.
	fromV1 := &brupopv1.BottlerocketShadow{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "brs-v1"},
		Spec: brupopv1.BottlerocketShadowSpec{State: brupopv1.StateStagedUpdate, StateTransitionTimestamp: &failedAt, Version: ptr.To("1.21.0")}}
	var stored brupopv2.BottlerocketShadow
	eventually(t, 20*time.Second, func() error {
		if err := client.IgnoreAlreadyExists(c.Create(ctx, fromV1.DeepCopy())); err != nil {
			return err
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(fromV1), &stored); err != nil {
			return err
		}
		if stored.Spec.State != brupopv2.StateStagedAndPerformedUpdate {
			// Stored unconverted, before kube-apiserver took the webhook: write it again (see
			// TestAPIServerConvertsThroughKubeAPIServer).
			_ = c.Delete(ctx, stored.DeepCopy())
			return errors.New("written before the conversion webhook took effect")
		}
		return nil
	})
	stored.Status = status.DeepCopy()
	if err := c.Status().Update(ctx, &stored); err != nil {
		t.Fatalf("status with crash_count %d: %v", uint32(maxCrashCount), err)
	}

	// Beyond upstream's u32 no component could read the shadow back: the CRD refuses it.
	for _, bad := range []string{"4294967296", "-1"} {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"status":{"crash_count":`+bad+`}}`))
		if err := c.Status().Patch(ctx, fromV2.DeepCopy(), patch); !apierrors.IsInvalid(err) {
			t.Errorf("crash_count %s: patch = %v, want Invalid", bad, err)
		}
	}

	for _, name := range []string{fromV2.Name, fromV1.Name} {
		key := client.ObjectKey{Namespace: ns, Name: name}
		checkV2 := func(step string) {
			t.Helper()
			var got brupopv2.BottlerocketShadow
			if err := c.Get(ctx, key, &got); err != nil {
				t.Fatalf("%s, %s: read as v2: %v", name, step, err)
			}
			if got.Status == nil || got.Status.CrashCount != maxCrashCount || got.Status.CurrentState != brupopv2.StateErrorReset ||
				got.Status.StateTransitionFailureTimestamp == nil || !got.Status.StateTransitionFailureTimestamp.Equal(&failedAt) ||
				got.Spec.StateTransitionTimestamp == nil || !got.Spec.StateTransitionTimestamp.Equal(&failedAt) {
				t.Errorf("%s, %s: read as v2: spec %+v status %+v, want crash_count %d and the timestamps", name, step, got.Spec, got.Status, uint32(maxCrashCount))
			}
		}
		checkV2("written")
		var asV1 brupopv1.BottlerocketShadow
		eventually(t, 20*time.Second, func() error { return c.Get(ctx, key, &asV1) })
		if asV1.Status == nil || asV1.Status.CurrentState != brupopv1.StateMonitoringUpdate || asV1.Status.TargetVersion != "1.21.0" ||
			asV1.Spec.StateTransitionTimestamp == nil || !asV1.Spec.StateTransitionTimestamp.Equal(&failedAt) {
			t.Errorf("%s: read as v1: spec %+v status %+v", name, asV1.Spec, asV1.Status)
		}
		// A v1 client's update: kube-apiserver keeps the stored (v2) status.
		asV1.Labels = map[string]string{"written-as": "v1"}
		if err := c.Update(ctx, &asV1); err != nil {
			t.Fatalf("%s: update through v1: %v", name, err)
		}
		checkV2("updated through v1")
		// And a v1 client's status write: v1 cannot say ErrorReset or crash_count, yet keeps them.
		if err := c.Get(ctx, key, &asV1); err != nil {
			t.Fatal(err)
		}
		asV1.Status.TargetVersion = "1.22.0"
		if err := c.Status().Update(ctx, &asV1); err != nil {
			t.Fatalf("%s: status update through v1: %v", name, err)
		}
		checkV2("status updated through v1")
		var got brupopv2.BottlerocketShadow
		if err := c.Get(ctx, key, &got); err != nil || got.Status.TargetVersion != "1.22.0" || got.Annotations[brupopv1.V2FieldsAnnotation] != "" {
			t.Errorf("%s: after the v1 status write: status %+v, annotations %v, err %v; want the new target and no %s stored",
				name, got.Status, got.Annotations, err, brupopv1.V2FieldsAnnotation)
		}
	}
}

// TestShadowTimestampsTakeAnyStringAsUpstream writes, through v2, timestamps upstream's CRD
// accepts: upstream's own spelling, and strings that are no time at all (its schema is a plain
// string). kube-apiserver takes them, our clients read every shadow (unreadable timestamps as
// absent, so that one shadow cannot stop a whole list), and conversion to v1 keeps them as written.
func TestShadowTimestampsTakeAnyStringAsUpstream(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, nil)
	pointConversionAt(t, ts.URL+agentapi.PathConvert, ts.CAPEM)
	at := time.Date(2022, 7, 9, 19, 32, 38, 609610964, time.UTC)
	for _, tc := range []struct {
		name, stamp string
		want        *time.Time // nil: read as absent
	}{
		{name: "brs-upstream", stamp: "2022-07-09T19:32:38.609610964+00:00", want: &at},
		{name: "brs-words", stamp: "yesterday"},
		{name: "brs-empty", stamp: ""},
		{name: "brs-date", stamp: "2022-07-09"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": brupopv2.GroupVersion.String(), "kind": "BottlerocketShadow",
				"metadata": map[string]any{"namespace": ns, "name": tc.name},
				"spec":     map[string]any{"state": "Idle", "state_transition_timestamp": tc.stamp, "version": nil},
			}}
			if err := c.Create(ctx, u); err != nil {
				t.Fatalf("create with state_transition_timestamp %q: %v", tc.stamp, err)
			}
			patch := fmt.Sprintf(`{"status":{"current_version":"1.20.0","target_version":"1.21.0","current_state":"ErrorReset","crash_count":%d,"state_transition_failure_timestamp":%q}}`, uint32(maxCrashCount), tc.stamp)
			if err := c.Status().Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
				t.Fatalf("status with state_transition_failure_timestamp %q: %v", tc.stamp, err)
			}
			key := client.ObjectKey{Namespace: ns, Name: tc.name}
			var got brupopv2.BottlerocketShadow
			if err := c.Get(ctx, key, &got); err != nil {
				t.Fatalf("read as v2: %v", err)
			}
			for field, ts := range map[string]*metav1.Time{"spec": got.Spec.StateTransitionTimestamp, "status": got.Status.StateTransitionFailureTimestamp} {
				if (ts == nil) != (tc.want == nil) || ts != nil && !ts.Time.Equal(*tc.want) {
					t.Errorf("%s timestamp %q read as %v, want %v", field, tc.stamp, ts, tc.want)
				}
			}
			if got.Status.CrashCount != maxCrashCount {
				t.Errorf("crash_count = %d", got.Status.CrashCount)
			}
			var asV1 brupopv1.BottlerocketShadow
			eventually(t, 20*time.Second, func() error { return c.Get(ctx, key, &asV1) })
			raw := &unstructured.Unstructured{}
			raw.SetGroupVersionKind(brupopv1.GroupVersion.WithKind("BottlerocketShadow"))
			if err := c.Get(ctx, key, raw); err != nil {
				t.Fatalf("read as v1: %v", err)
			}
			if v, _, _ := unstructured.NestedString(raw.Object, "spec", "state_transition_timestamp"); v != tc.stamp {
				t.Errorf("v1 state_transition_timestamp = %q, want %q as written", v, tc.stamp)
			}
		})
	}
	for _, list := range []client.ObjectList{&brupopv2.BottlerocketShadowList{}, &brupopv1.BottlerocketShadowList{}} {
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			t.Errorf("list %T: %v", list, err)
		}
	}
}
