package deploy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/bottlerocket-os/brupop-go/deploy"
)

// TestClusterRolesMatchConfig checks that the chart grants exactly the rules generated into
// config/rbac, to the ServiceAccounts there.
func TestClusterRolesMatchConfig(t *testing.T) {
	r := render(t, deploy.OperatorChart, map[string]any{"namespace": "brupop-rbac-test"})
	for _, dir := range []string{"agent", "apiserver", "controller"} {
		t.Run(dir, func(t *testing.T) {
			var want rbacv1.ClusterRole
			readYAML(t, filepath.Join(root, "config", "rbac", dir, "role.yaml"), &want)
			var got rbacv1.ClusterRole
			into(t, r.get(t, "ClusterRole", want.Name), &got)
			if diff := cmp.Diff(want.Rules, got.Rules); diff != "" {
				t.Errorf("rules of %s (-config/rbac +chart):\n%s", want.Name, diff)
			}
			var sa struct {
				Metadata struct{ Name string } `json:"metadata"`
			}
			readYAML(t, filepath.Join(root, "config", "rbac", dir, "service_account.yaml"), &sa)
			r.get(t, "ServiceAccount", sa.Metadata.Name)
			var wantBinding, gotBinding rbacv1.ClusterRoleBinding
			readYAML(t, filepath.Join(root, "config", "rbac", dir, "role_binding.yaml"), &wantBinding)
			into(t, r.get(t, "ClusterRoleBinding", wantBinding.Name), &gotBinding)
			wantBinding.Subjects[0].Namespace = "brupop-rbac-test"
			if diff := cmp.Diff(wantBinding.Subjects, gotBinding.Subjects); diff != "" {
				t.Errorf("subjects of %s (-config/rbac +chart):\n%s", wantBinding.Name, diff)
			}
			if diff := cmp.Diff(wantBinding.RoleRef, gotBinding.RoleRef); diff != "" {
				t.Errorf("role of %s (-config/rbac +chart):\n%s", wantBinding.Name, diff)
			}
		})
	}
	var auth rbacv1.ClusterRoleBinding
	into(t, r.get(t, "ClusterRoleBinding", "brupop-apiserver-auth-delegator-role-binding"), &auth)
	if auth.RoleRef.Name != "system:auth-delegator" || auth.Subjects[0].Name != "brupop-apiserver-service-account" {
		t.Errorf("auth delegation binding grants %s to %v", auth.RoleRef.Name, auth.Subjects)
	}
}

// readYAML decodes the first document of path into out.
func readYAML(t *testing.T, path string, out any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
