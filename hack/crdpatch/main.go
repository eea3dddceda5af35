// Command crdpatch adds to the generated BottlerocketShadow CRD what controller-gen cannot express
// in markers: the webhook conversion through the Brupop API server (path /crdconvert, as upstream)
// and the cert-manager annotation that injects the CA bundle for it. `make manifests` runs it on
// controller-gen's output, so the CRD stays generated and never hand-edited.
package main

import (
	"fmt"
	"os"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

const (
	namespace   = "brupop-bottlerocket-aws"
	serviceName = "brupop-apiserver"
	servicePort = 443
	// caCertificate is the cert-manager Certificate whose CA signs the API server's serving
	// certificate. Upstream names one that does not exist (docs/upstream.md, "Charts and
	// environment"); this one does.
	caCertificate = "brupop-selfsigned-ca"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: crdpatch CRD.yaml")
		os.Exit(2)
	}
	if err := patch(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "crdpatch:", err)
		os.Exit(1)
	}
}

func patch(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(raw, &crd); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	if crd.Annotations == nil {
		crd.Annotations = map[string]string{}
	}
	crd.Annotations["cert-manager.io/inject-ca-from"] = namespace + "/" + caCertificate
	webhookPath, port := "/crdconvert", int32(servicePort)
	crd.Spec.Conversion = &apiextensionsv1.CustomResourceConversion{
		Strategy: apiextensionsv1.WebhookConverter,
		Webhook: &apiextensionsv1.WebhookConversion{
			ClientConfig: &apiextensionsv1.WebhookClientConfig{
				Service: &apiextensionsv1.ServiceReference{
					Namespace: namespace, Name: serviceName, Path: &webhookPath, Port: &port,
				},
			},
			ConversionReviewVersions: []string{"v1"},
		},
	}
	out, err := yaml.Marshal(&crd)
	if err != nil {
		return err
	}
	// Drop the empty status block the typed object always carries.
	var generic map[string]any
	if err := yaml.Unmarshal(out, &generic); err != nil {
		return err
	}
	delete(generic, "status")
	if md, ok := generic["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	out, err = yaml.Marshal(generic)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte("---\n"), out...), 0o644)
}
