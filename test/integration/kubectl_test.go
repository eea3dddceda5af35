package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
	"github.com/bottlerocket-os/brupop-go/internal/fleetview"
	"github.com/bottlerocket-os/brupop-go/internal/kubectlbrupop"
	"github.com/bottlerocket-os/brupop-go/internal/rollout"
)

// kubectlBrupop runs `kubectl brupop args...` against the shared control plane.
func kubectlBrupop(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := kubectlbrupop.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", cluster.KubeconfigPath}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	t.Logf("kubectl brupop %s\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	return out.String(), err
}

// brupopNode creates a Ready Node, opted in or not, and its shadow reporting Idle on current
// with target available; both go away when the test ends.
func brupopNode(t *testing.T, c client.Client, ns, name string, optIn bool, current, target string) {
	t.Helper()
	ctx := context.Background()
	built := fixture.Node(name)
	if !optIn {
		built = fixture.Node(name, fixture.OptedOut())
	}
	n := &corev1.Node{ObjectMeta: built.ObjectMeta} // created without status; the Ready condition is patched in
	if err := c.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), n) })
	now := metav1.Now()
	ready := n.DeepCopy()
	ready.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: now, LastTransitionTime: now}}
	// A patch, not an update: the node controllers may have changed the Node meanwhile.
	if err := c.Status().Patch(ctx, ready, client.MergeFrom(n)); err != nil {
		t.Fatal(err)
	}
	brs := fixture.Shadow(name, fixture.Reported(brupopv2.StateIdle, current, target))
	brs.Namespace = ns
	st := brs.Status
	brs.Status = nil
	if err := c.Create(ctx, brs); err != nil {
		t.Fatal(err)
	}
	brs.Status = st
	if err := c.Status().Update(ctx, brs); err != nil {
		t.Fatal(err)
	}
}

// controllerDeployment creates a controller Deployment without replicas whose environment says
// MAX_CONCURRENT_UPDATE=maxConcurrent, as upstream's manifests name it: the plugin must not read
// it.
func controllerDeployment(t *testing.T, c client.Client, ns, maxConcurrent string) {
	t.Helper()
	labels := map[string]string{brupopv2.ComponentLabel: "brupop-controller"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "brupop-controller-deployment", Labels: labels},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "brupop", Image: "brupop", Env: []corev1.EnvVar{{Name: "MAX_CONCURRENT_UPDATE", Value: maxConcurrent}}}}}}},
	}
	if err := c.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

// publishSettings writes the FleetPolicy's status as a controller on node applying spec does
// (status.applied holds spec resolved, with no environment).
func publishSettings(t *testing.T, c client.Client, ns string, spec brupopv2.FleetPolicySpec, node string) {
	t.Helper()
	ctx := context.Background()
	var fp brupopv2.FleetPolicy
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
		t.Fatal(err)
	}
	s, err := rollout.SettingsFrom(&brupopv2.FleetPolicy{Spec: spec}, rollout.Environment{})
	if err != nil {
		t.Fatal(err)
	}
	fp.Status = brupopv2.FleetPolicyStatus{ObservedGeneration: fp.Generation, ControllerNode: node,
		Applied: &brupopv2.FleetPolicyApplied{Generation: fp.Generation, Time: metav1.Now(), Spec: s.Resolved()}}
	if err := c.Status().Update(ctx, &fp); err != nil {
		t.Fatal(err)
	}
}

// TestKubectlBrupop runs the plugin against a fleet whose controller Deployment says
// MAX_CONCURRENT_UPDATE=1 while the controller published concurrency 3 in the FleetPolicy's
// status: the plugin shows what was published, and says so when nothing was.
func TestKubectlBrupop(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	current, unlabelled, waiting := ns+"-current", ns+"-unlabelled", ns+"-waiting"
	brupopNode(t, c, ns, current, true, "1.21.0", "1.21.0")
	brupopNode(t, c, ns, unlabelled, false, "1.20.0", "1.21.0")
	brupopNode(t, c, ns, waiting, true, "1.20.0", "1.21.0")
	controllerDeployment(t, c, ns, "1")
	controllerNode := ns + "-controller"
	kubeconfig, err := clientcmd.LoadFromFile(cluster.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("status without a FleetPolicy says nothing was published", func(t *testing.T) {
		out, err := kubectlBrupop(t, "status", "-n", ns, "--context", kubeconfig.CurrentContext, "--request-timeout", "10s")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{current, unlabelled, waiting, "3 nodes (1.20.0 x2, 1.21.0 x1) | in flight 0 | failed 0 | halted none",
			"the controller has not published its settings yet (there is no FleetPolicy " + ns + "/default)"} {
			if !strings.Contains(out, want) {
				t.Errorf("status does not show %q", want)
			}
		}
	})
	t.Run("pause creates the FleetPolicy", func(t *testing.T) {
		out, err := kubectlBrupop(t, "pause", "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "spec.paused: false -> true") {
			t.Errorf("pause does not say what changed")
		}
		var fp brupopv2.FleetPolicy
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
			t.Fatal(err)
		}
		if !fp.Spec.Paused {
			t.Errorf("FleetPolicy spec.paused = false after pause")
		}
	})
	t.Run("why without status.applied says nothing was published", func(t *testing.T) {
		out, err := kubectlBrupop(t, "why", waiting, "-n", ns, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var e fleetview.Explanation
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("why -o json is not JSON: %v", err)
		}
		want := "the controller has not published its settings yet (FleetPolicy " + ns + "/default has no status.applied)"
		if e.Verdict != fleetview.VerdictUnknown || e.Reason != fleetview.ReasonUnpublished || !strings.Contains(e.Summary, want) {
			t.Errorf("why %s = %s (%s): %s; want Unknown (%s) saying %q", waiting, e.Verdict, e.Reason, e.Summary, fleetview.ReasonUnpublished, want)
		}
	})
	publishSettings(t, c, ns, brupopv2.FleetPolicySpec{MaxConcurrentUpdates: "3", Paused: true}, controllerNode)
	t.Run("status shows the published settings, not the Deployment's", func(t *testing.T) {
		out, err := kubectlBrupop(t, "status", "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		if want := "3 nodes (1.20.0 x2, 1.21.0 x1) | in flight 0/3 | waiting 2 (NotOptedIn 1, Paused 1) | failed 0 | halted none | PAUSED"; !strings.Contains(out, want) {
			t.Errorf("status does not show %q", want)
		}
	})
	t.Run("status -o json", func(t *testing.T) {
		out, err := kubectlBrupop(t, "status", "-n", ns, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var st fleetview.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status -o json is not JSON: %v", err)
		}
		sum := st.Summary
		if len(st.Nodes) != 3 || sum.Limit != 3 || sum.Concurrency != "3" || sum.ControllerNode != controllerNode ||
			!strings.HasPrefix(sum.ControllerSource, "FleetPolicy "+ns+"/default status.applied (generation 1") || sum.SettingsMissing != "" {
			t.Errorf("status -o json = %d nodes, limit %d, concurrency %q, controller node %q, source %q, missing %q; want 3, 3, 3, %q, status.applied, none",
				len(st.Nodes), sum.Limit, sum.Concurrency, sum.ControllerNode, sum.ControllerSource, sum.SettingsMissing, controllerNode)
		}
	})
	t.Run("why a node waits while paused", func(t *testing.T) {
		out, err := kubectlBrupop(t, "why", waiting, "-n", ns, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var e fleetview.Explanation
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("why -o json is not JSON: %v", err)
		}
		if e.Verdict != fleetview.VerdictWaiting || e.Reason != "Paused" {
			t.Errorf("why %s = %s (%s), want Waiting (Paused)", waiting, e.Verdict, e.Reason)
		}
	})
	t.Run("why a node without the label", func(t *testing.T) {
		out, err := kubectlBrupop(t, "why", unlabelled, "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Waiting (NotOptedIn)") || !strings.Contains(out, "kubectl label node "+unlabelled) {
			t.Errorf("why does not explain the missing label")
		}
	})
	t.Run("resume VERSION", func(t *testing.T) {
		if _, err := kubectlBrupop(t, "resume", "1.21.0", "-n", ns); err != nil {
			t.Fatal(err)
		}
		var fp brupopv2.FleetPolicy
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
			t.Fatal(err)
		}
		if fp.Spec.Paused || fp.Annotations[brupopv2.ResumeAnnotation] != "1.21.0" {
			t.Errorf("after resume 1.21.0: paused %t, annotation %q; want false, 1.21.0", fp.Spec.Paused, fp.Annotations[brupopv2.ResumeAnnotation])
		}
	})
	t.Run("status after a spec change the controller has not acted on", func(t *testing.T) {
		out, err := kubectlBrupop(t, "status", "-n", ns)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"in flight 0/3", "PAUSED", "FleetPolicy " + ns + "/default is at generation 2 and the controller last acted on generation 1"} {
			if !strings.Contains(out, want) {
				t.Errorf("status does not show %q", want)
			}
		}
	})
	t.Run("why an unknown node fails", func(t *testing.T) {
		if _, err := kubectlBrupop(t, "why", ns+"-nope", "-n", ns); err == nil {
			t.Error("why of an unknown node succeeded")
		}
	})
}
