package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/controller"
	"github.com/bottlerocket-os/brupop-go/internal/controlplane"
	"github.com/bottlerocket-os/brupop-go/internal/logging"
)

// syncBuffer is a buffer several goroutines write log lines to.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns the number of lines that contain text.
func (b *syncBuffer) count(text string) int {
	return strings.Count(b.String(), text)
}

// idle returns an error when the shadow of node has left Idle.
func idle(ctx context.Context, c client.Client, ns, node string) error {
	var brs brupopv2.BottlerocketShadow
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(node)}, &brs); err != nil {
		return err
	}
	if brs.Spec.State != brupopv2.StateIdle {
		return fmt.Errorf("%s started (spec %s) on the halted version", node, brs.Spec.State)
	}
	return nil
}

// TestControllerRunsWithoutTheFleetPolicyCRD: the controller installed as upstream's manifests
// install it: upstream's CRD chart (BottlerocketShadow only, so no FleetPolicy CRD), no
// POD_NAMESPACE, a namespace other than brupop-bottlerocket-aws that it reads from its
// ServiceAccount's namespace file. It rolls out on the environment's settings, keeps the failure
// ledger and the halt in memory, is ready, and says once that the CRD is missing. Once the CRD
// is installed it creates the FleetPolicy, stores the ledger there and follows its spec.
//
// Every other test shares a control plane with the FleetPolicy CRD installed, so this one starts
// its own: etcd and kube-apiserver only, with the BottlerocketShadow CRD.
func TestControllerRunsWithoutTheFleetPolicyCRD(t *testing.T) {
	t.Parallel()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	crdDir := filepath.Join("..", "..", "config", "crd")
	cp, err := controlplane.Start(ctx, controlplane.Options{CRDDirs: []string{filepath.Join(crdDir, "brupop.bottlerocket.aws_bottlerocketshadows.yaml")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("control plane without the FleetPolicy CRD started in %s", time.Since(began).Round(time.Millisecond))
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ns := newNamespace(t, c)
	names := newFleet(t, c, ns, 3)
	bad := brupopv2.ShadowName(names[0]) // starts first, with names[1] (the environment says 2)
	runAgents(t, c, ns, func(brs *brupopv2.BottlerocketShadow) bool {
		if brs.Name != bad || brs.Spec.State != brupopv2.StateRebootedIntoUpdate || brs.Status.CurrentState == brupopv2.StateErrorReset {
			return true
		}
		st := brs.Status // the new version does not boot: a release failure
		st.CurrentState, st.CrashCount = brupopv2.StateErrorReset, st.CrashCount+1
		st.StateTransitionFailureTimestamp, st.FailureReason = ptr.To(metav1.Now()), "BootRolledBack: booted "+ctrlOldVersion
		_ = c.Status().Update(context.Background(), brs) // a conflict is retried on the next tick
		return false
	})

	// As in a pod of upstream's manifest: the namespace is only in the ServiceAccount's file.
	nsFile := filepath.Join(t.TempDir(), "namespace")
	if err := os.WriteFile(nsFile, []byte(ns+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	healthAddr := freeAddr(t)
	env := map[string]string{"MY_NODE_NAME": "controller-node-" + ns, "MAX_CONCURRENT_UPDATE": "2",
		"LOGGING_FORMATTER": "json", "TRACING_FILTER_DIRECTIVE": "error"}
	o, err := controller.ParseOptions([]string{"--namespace-file=" + nsFile, "--metrics-bind-address=0",
		"--health-probe-bind-address=" + healthAddr}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.Namespace != ns {
		t.Fatalf("namespace %q, want %q from the ServiceAccount's file", o.Namespace, ns)
	}
	var logs syncBuffer
	o.Log, err = logging.New(&logs, logging.Options{Format: "json", Filter: "info"})
	if err != nil {
		t.Fatal(err)
	}
	o.CRDPollInterval = 200 * time.Millisecond
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("controller log:\n%s", logs.String())
		}
	})
	startController(t, controllerIdentityOn(t, cp, c, ns, nil), o)

	// The rollout runs on the environment's settings; the failure halts the version in memory.
	hasEvent(t, c, ns, bad, controller.EventRolloutHalted, "the FleetPolicy CRD is not installed")
	eventually(t, 15*time.Second, func() error {
		var brs brupopv2.BottlerocketShadow
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(names[1])}, &brs); err != nil {
			return err
		}
		if brs.Status == nil || brs.Status.CurrentState != brupopv2.StateMonitoringUpdate || brs.Status.CurrentVersion != ctrlNewVersion {
			return fmt.Errorf("%s: status %+v, want MonitoringUpdate on %s", brs.Name, brs.Status, ctrlNewVersion)
		}
		return nil
	})
	eventually(t, 15*time.Second, func() error { return httpContains("http://"+healthAddr+"/readyz", "ok") })
	holds(t, time.Second, func() error { return idle(ctx, c, ns, names[2]) })
	if n := logs.count("The FleetPolicy CRD is not installed"); n != 1 {
		t.Errorf("%d warnings that the FleetPolicy CRD is missing, want 1", n)
	}

	// The CRD is installed: the FleetPolicy is created with the ledger kept in memory.
	if _, err := envtest.InstallCRDs(cp.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(crdDir, "brupop.bottlerocket.aws_fleetpolicies.yaml")}, ErrorIfPathMissing: true,
	}); err != nil {
		t.Fatal(err)
	}
	var fp brupopv2.FleetPolicy
	eventually(t, 15*time.Second, func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brupopv2.DefaultFleetPolicyName}, &fp); err != nil {
			return err
		}
		v := fp.Status.Versions
		if len(v) != 1 || v[0].Version != ctrlNewVersion || !v[0].Halted || len(v[0].Failures) != 1 || v[0].Failures[0].Node != names[0] {
			return fmt.Errorf("status.versions %+v, want %s halted after the failure of %s", v, ctrlNewVersion, names[0])
		}
		if a := fp.Status.Applied; a == nil || a.Spec.MaxConcurrentUpdates != "2" {
			return fmt.Errorf("status.applied %+v, want the environment's concurrency 2", a)
		}
		return nil
	})
	// It follows the FleetPolicy from now on: a short monitoring period completes names[1].
	patch := client.MergeFrom(fp.DeepCopy())
	fp.Spec.Monitoring = &brupopv2.FleetPolicyMonitoring{Period: &metav1.Duration{Duration: time.Second}}
	if err := c.Patch(ctx, &fp, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		var brs brupopv2.BottlerocketShadow
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: brupopv2.ShadowName(names[1])}, &brs); err != nil {
			return err
		}
		if brs.Spec.State != brupopv2.StateIdle || brs.Status.CurrentState != brupopv2.StateIdle || brs.Status.CurrentVersion != ctrlNewVersion {
			return fmt.Errorf("%s: spec %s, status %+v; want Idle on %s", brs.Name, brs.Spec.State, brs.Status, ctrlNewVersion)
		}
		return nil
	})
	if err := idle(ctx, c, ns, names[2]); err != nil {
		t.Error(err)
	}
	if a, b := logs.count("The FleetPolicy CRD is not installed"), logs.count("The FleetPolicy CRD is installed"); a != 1 || b != 1 {
		t.Errorf("%d warnings that the CRD is missing and %d lines that it appeared, want 1 each", a, b)
	}
	t.Logf("the whole test took %s", time.Since(began).Round(time.Millisecond))
}

// TestControllerCacheScopes: the controller's cache holds the FleetPolicies of its namespace only
// (scoped without naming their kind, so that the manager starts without their CRD) and the Pods
// of every namespace, where the monitoring selector's pods run.
func TestControllerCacheScopes(t *testing.T) {
	t.Parallel()
	c := adminClient(t)
	ns, other := newNamespace(t, c), newNamespace(t, c)
	label := map[string]string{"brupop-test": other}
	for _, n := range []string{ns, other} {
		fp := &brupopv2.FleetPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: n, Name: brupopv2.DefaultFleetPolicyName}}
		if err := c.Create(context.Background(), fp); err != nil {
			t.Fatal(err)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "monitored", Labels: label},
		Spec: corev1.PodSpec{
			Containers:      []corev1.Container{{Name: "c", Image: "registry.invalid/none"}},
			SchedulingGates: []corev1.PodSchedulingGate{{Name: "brupop.bottlerocket.aws/test"}}, // never runs
		},
	}
	if err := c.Create(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	mgr, err := controller.NewManager(cluster.Config, testOptions(ns, "1"), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	eventually(t, 15*time.Second, func() error {
		var pods corev1.PodList
		if err := mgr.GetCache().List(ctx, &pods, client.MatchingLabels(label)); err != nil {
			return err
		}
		if len(pods.Items) != 1 || pods.Items[0].Namespace != other {
			return fmt.Errorf("cached pods %d, want the one in %s", len(pods.Items), other)
		}
		return nil
	})
	var fps brupopv2.FleetPolicyList
	if err := mgr.GetCache().List(ctx, &fps); err != nil {
		t.Fatal(err)
	}
	if len(fps.Items) != 1 || fps.Items[0].Namespace != ns {
		t.Errorf("cached FleetPolicies %d, want only the one of %s", len(fps.Items), ns)
	}
}
