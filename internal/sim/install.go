package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// configDir finds config/ of this module above the working directory.
func configDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("sim: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "config"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("sim: no go.mod above the working directory: run from the brupop-go clone")
		}
		dir = parent
	}
}

// create creates obj, accepting that it exists already.
func create(ctx context.Context, c client.Client, obj client.Object) error {
	if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("sim: create %T %s: %w", obj, obj.GetName(), err)
	}
	return nil
}

// installRBAC creates every object of the YAML files under dir/rbac (ServiceAccounts, roles and
// bindings, as the installation ships them), then the ServiceAccounts config/ lacks still.
func installRBAC(ctx context.Context, c client.Client, dir string) error {
	rbac := filepath.Join(dir, "rbac")
	err := filepath.WalkDir(rbac, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") || d.Name() == "kustomization.yaml" {
			return err
		}
		return applyFile(ctx, c, path)
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sim: install %s: %w", rbac, err)
	}
	for _, sa := range []string{agentapi.AgentServiceAccount, APIServerServiceAccount, ControllerServiceAccount} {
		if err := create(ctx, c, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa, Namespace: Namespace}}); err != nil {
			return err
		}
	}
	return nil
}

// applyFile creates the objects of one multi-document YAML file.
func applyFile(ctx context.Context, c client.Client, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("decode %s: %w", path, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := create(ctx, c, &obj); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
}

// pointConversionWebhook installs the shadow CRD's conversion webhook as config/crd declares it
// (envtest drops it when it installs the CRDs), calling url and trusting caPEM.
func pointConversionWebhook(ctx context.Context, c client.Client, dir, url string, caPEM []byte) error {
	name := "bottlerocketshadows." + v2.GroupVersion.Group
	path := filepath.Join(dir, "crd", v2.GroupVersion.Group+"_bottlerocketshadows.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	var want apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &want); err != nil {
		return fmt.Errorf("sim: decode %s: %w", path, err)
	}
	conv := want.Spec.Conversion
	if conv == nil || conv.Webhook == nil {
		return fmt.Errorf("sim: %s has no conversion webhook: run make manifests", path)
	}
	conv.Webhook.ClientConfig = &apiextensionsv1.WebhookClientConfig{URL: &url, CABundle: caPEM}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := c.Get(ctx, types.NamespacedName{Name: name}, crd); err != nil {
		return fmt.Errorf("sim: get CRD %s: %w", name, err)
	}
	patch := client.MergeFrom(crd.DeepCopy())
	crd.Spec.Conversion = conv
	if err := c.Patch(ctx, crd, patch); err != nil {
		return fmt.Errorf("sim: point the conversion webhook at %s: %w", url, err)
	}
	return nil
}
