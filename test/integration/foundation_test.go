package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

func shadow(ns, node string, state brupopv2.State, version *string) *brupopv2.BottlerocketShadow {
	return &brupopv2.BottlerocketShadow{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: brupopv2.ShadowName(node)},
		Spec:       brupopv2.BottlerocketShadowSpec{State: state, Version: version},
	}
}

func TestShadowValidation(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)

	if err := c.Create(ctx, shadow(ns, "valid", brupopv2.StateIdle, ptr.To("1.21.0"))); err != nil {
		t.Fatalf("valid shadow refused: %v", err)
	}
	var got brupopv2.BottlerocketShadow
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "brs-valid"}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.State != brupopv2.StateIdle || ptr.Deref(got.Spec.Version, "") != "1.21.0" {
		t.Errorf("stored spec = %+v, want Idle 1.21.0", got.Spec)
	}

	for name, bad := range map[string]*brupopv2.BottlerocketShadow{
		"unknown state":      shadow(ns, "bad-state", "Rebooting", nil),
		"v1-only state":      shadow(ns, "v1-state", "StagedUpdate", nil),
		"not a semver":       shadow(ns, "bad-version", brupopv2.StateIdle, ptr.To("v1.21")),
		"leading zero":       shadow(ns, "zero", brupopv2.StateIdle, ptr.To("1.021.0")),
		"spec without state": shadow(ns, "no-state", "", nil),
	} {
		t.Run(name, func(t *testing.T) {
			err := c.Create(ctx, bad)
			if !apierrors.IsInvalid(err) {
				t.Fatalf("Create = %v, want Invalid", err)
			}
		})
	}
}

func TestStatusSubresourceSeparatesWriters(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	brs := shadow(ns, "node-a", brupopv2.StateIdle, nil)
	if err := c.Create(ctx, brs); err != nil {
		t.Fatal(err)
	}

	// A status write must not change the spec.
	brs.Status = &brupopv2.BottlerocketShadowStatus{
		CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: brupopv2.StateIdle,
	}
	brs.Spec.State = brupopv2.StateRebootedIntoUpdate
	if err := c.Status().Update(ctx, brs); err != nil {
		t.Fatal(err)
	}
	var got brupopv2.BottlerocketShadow
	if err := c.Get(ctx, client.ObjectKeyFromObject(brs), &got); err != nil {
		t.Fatal(err)
	}
	if got.Spec.State != brupopv2.StateIdle {
		t.Errorf("status write changed spec.state to %s", got.Spec.State)
	}
	if got.Status == nil || got.Status.TargetVersion != "1.21.0" {
		t.Fatalf("status not stored: %+v", got.Status)
	}

	// A spec write must not change the status.
	got.Spec.State = brupopv2.StateStagedAndPerformedUpdate
	got.Spec.Version = ptr.To("1.21.0")
	got.Status.CurrentState = brupopv2.StateErrorReset
	if err := c.Update(ctx, &got); err != nil {
		t.Fatal(err)
	}
	var after brupopv2.BottlerocketShadow
	if err := c.Get(ctx, client.ObjectKeyFromObject(brs), &after); err != nil {
		t.Fatal(err)
	}
	if after.Spec.State != brupopv2.StateStagedAndPerformedUpdate {
		t.Errorf("spec write lost: %s", after.Spec.State)
	}
	if after.Status.CurrentState != brupopv2.StateIdle {
		t.Errorf("spec write changed status.current_state to %s", after.Status.CurrentState)
	}
}

func TestKubectlGetBrsPrintsUpstreamColumns(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	brs := shadow(ns, "node-k", brupopv2.StateStagedAndPerformedUpdate, ptr.To("1.21.0"))
	if err := c.Create(ctx, brs); err != nil {
		t.Fatal(err)
	}
	brs.Status = &brupopv2.BottlerocketShadowStatus{
		CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: brupopv2.StateIdle, CrashCount: 2,
	}
	if err := c.Status().Update(ctx, brs); err != nil {
		t.Fatal(err)
	}
	cmdCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cmdCtx, cluster.KubectlPath(), "--kubeconfig", cluster.KubeconfigPath,
		"get", "brs", "-n", ns).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl get brs: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("kubectl printed %d lines, want header + 1:\n%s", len(lines), out)
	}
	wantHeader := []string{"NAME", "STATE", "VERSION", "TARGET", "STATE", "TARGET", "VERSION", "CRASH", "COUNT"}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != strings.Join(wantHeader, " ") {
		t.Errorf("header = %q, want %q", got, wantHeader)
	}
	row := strings.Fields(lines[1])
	wantRow := []string{"brs-node-k", "Idle", "1.20.0", "StagedAndPerformedUpdate", "1.21.0", "2"}
	if len(row) < len(wantRow) || strings.Join(row[:len(wantRow)], " ") != strings.Join(wantRow, " ") {
		t.Errorf("row = %q, want prefix %q", row, wantRow)
	}
}

func TestAuthorizationIsEnforced(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "no-rights"}}
	if err := c.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(cluster.Config)
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := rest.AnonymousClientConfig(cluster.Config)
	cfg.BearerToken = tr.Status.Token
	nobody, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	err = nobody.Create(ctx, shadow(ns, "intruder", brupopv2.StateIdle, nil))
	if !apierrors.IsForbidden(err) {
		t.Fatalf("create by a ServiceAccount without RBAC = %v, want Forbidden", err)
	}
	var list brupopv2.BottlerocketShadowList
	if err := nobody.List(ctx, &list, client.InNamespace(ns)); !apierrors.IsForbidden(err) {
		t.Fatalf("list by a ServiceAccount without RBAC = %v, want Forbidden", err)
	}
}

func TestBoundTokenPassesTokenReview(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	cs := kubernetes.NewForConfigOrDie(cluster.Config)

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "brupop-agent-service-account"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "token-node-" + ns}}
	for _, o := range []client.Object{sa, node} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = c.Delete(context.Background(), node) })
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
		Spec: corev1.PodSpec{
			NodeName: node.Name, ServiceAccountName: sa.Name,
			Containers: []corev1.Container{{Name: "agent", Image: "agent"}},
		},
	}
	if err := c.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa.Name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			Audiences:      []string{"brupop-apiserver"},
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	review := func(audience string) *authenticationv1.TokenReview {
		t.Helper()
		r, err := cs.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
			Spec: authenticationv1.TokenReviewSpec{Token: tr.Status.Token, Audiences: []string{audience}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ok := review("brupop-apiserver")
	if !ok.Status.Authenticated {
		t.Fatalf("token for brupop-apiserver not authenticated: %s", ok.Status.Error)
	}
	if want := fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa.Name); ok.Status.User.Username != want {
		t.Errorf("user = %s, want %s", ok.Status.User.Username, want)
	}
	if got := ok.Status.User.Extra["authentication.kubernetes.io/node-name"]; len(got) != 1 || got[0] != node.Name {
		t.Errorf("node-name extra = %v, want [%s]", got, node.Name)
	}
	if bad := review("someone-else"); bad.Status.Authenticated {
		t.Error("token accepted for another audience")
	}
}

func TestControllerManagerCreatesDeploymentPods(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web"}}},
			},
		},
	}
	if err := c.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() error {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
			return err
		}
		if len(pods.Items) != 3 {
			return fmt.Errorf("%d pods, want 3", len(pods.Items))
		}
		return nil
	})
}

func TestToolsAreThePinnedVersions(t *testing.T) {
	out, err := exec.Command(cluster.KubectlPath(), "--kubeconfig", cluster.KubeconfigPath, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl version: %v\n%s", err, out)
	}
	for _, want := range []string{"Client Version: v1.37.2", "Server Version: v1.37.2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kubectl version output lacks %q:\n%s", want, out)
		}
	}
}
