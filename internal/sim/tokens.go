package sim

import (
	"context"
	"fmt"
	"os"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
)

// tokenLifetime is long enough for any simulation, even one kept up with --keep for a day.
const tokenLifetime = 24 * 60 * 60

// requestToken returns a token of the ServiceAccount sa in Namespace from the TokenRequest API,
// for audience (empty: kube-apiserver's own) and bound to pod when it is not nil.
func requestToken(ctx context.Context, kube kubernetes.Interface, sa, audience string, pod *corev1.Pod) (string, error) {
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](tokenLifetime)}}
	if audience != "" {
		req.Spec.Audiences = []string{audience}
	}
	if pod != nil {
		req.Spec.BoundObjectRef = &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}
	}
	resp, err := kube.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("sim: token of %s for audience %q: %w", sa, audience, err)
	}
	return resp.Status.Token, nil
}

// asToken returns admin with its identity replaced by a bearer token, so that RBAC applies.
func asToken(admin *rest.Config, token string) *rest.Config {
	cfg := rest.AnonymousClientConfig(admin)
	cfg.BearerToken = token
	return cfg
}

// serviceAccountConfig returns a client configuration of ServiceAccount sa.
func serviceAccountConfig(ctx context.Context, admin *rest.Config, kube kubernetes.Interface, sa string) (*rest.Config, error) {
	token, err := requestToken(ctx, kube, sa, "", nil)
	if err != nil {
		return nil, err
	}
	return asToken(admin, token), nil
}

// writeToken writes a token file readable only by this user.
func writeToken(path, token string) error {
	if err := os.WriteFile(path, []byte(token), 0o600); err != nil {
		return fmt.Errorf("sim: write token: %w", err)
	}
	return nil
}
