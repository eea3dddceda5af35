package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv1 "github.com/bottlerocket-os/brupop-go/api/v1"
	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

const crdName = "bottlerocketshadows.brupop.bottlerocket.aws"

// pointConversionAt makes kube-apiserver call url for conversions until the test ends.
func pointConversionAt(t *testing.T, url string, caBundle []byte) {
	t.Helper()
	ctx := context.Background()
	ext := apiextensionsclient.NewForConfigOrDie(cluster.Config)
	var original *apiextensionsv1.CustomResourceConversion
	set := func(conv func() *apiextensionsv1.CustomResourceConversion) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			crd, err := ext.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crdName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if original == nil {
				original = crd.Spec.Conversion.DeepCopy()
			}
			crd.Spec.Conversion = conv()
			_, err = ext.ApiextensionsV1().CustomResourceDefinitions().Update(ctx, crd, metav1.UpdateOptions{})
			return err
		})
	}
	err := set(func() *apiextensionsv1.CustomResourceConversion {
		return &apiextensionsv1.CustomResourceConversion{
			Strategy: apiextensionsv1.WebhookConverter,
			Webhook: &apiextensionsv1.WebhookConversion{
				ClientConfig:             &apiextensionsv1.WebhookClientConfig{URL: ptr.To(url), CABundle: caBundle},
				ConversionReviewVersions: []string{"v1"},
			},
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := set(func() *apiextensionsv1.CustomResourceConversion { return original }); err != nil {
			t.Errorf("restore the CRD's conversion: %v", err)
		}
	})
}

func TestAPIServerConvertsThroughKubeAPIServer(t *testing.T) {
	ctx := context.Background()
	c := adminClient(t)
	ns := newNamespace(t, c)
	ts := startAPIServer(t, ns, nil)
	pointConversionAt(t, ts.URL+agentapi.PathConvert, ts.CAPEM)
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "kept"}}
	}

	// Written as v1, read as v2.
	old := &brupopv1.BottlerocketShadow{ObjectMeta: meta("brs-old"), Spec: brupopv1.BottlerocketShadowSpec{State: brupopv1.StatePerformedUpdate, Version: ptr.To("1.21.0")}}
	var asV2 brupopv2.BottlerocketShadow
	// kube-apiserver takes the new conversion strategy a moment after the CRD update: an object
	// written before is stored unconverted, so write it again until it is converted.
	eventually(t, 20*time.Second, func() error {
		if err := client.IgnoreAlreadyExists(c.Create(ctx, old.DeepCopy())); err != nil {
			return err
		}
		if err := c.Get(ctx, client.ObjectKeyFromObject(old), &asV2); err != nil {
			return err
		}
		if asV2.Spec.State == brupopv2.State(brupopv1.StatePerformedUpdate) {
			// Delete through v2: the stored object holds a v1 state, which v1 reads would have to
			// convert (and the webhook rightly refuses).
			_ = c.Delete(ctx, asV2.DeepCopy())
			return errors.New("written before the conversion webhook took effect")
		}
		return nil
	})
	if asV2.Spec.State != brupopv2.StateStagedAndPerformedUpdate || ptr.Deref(asV2.Spec.Version, "") != "1.21.0" ||
		asV2.Labels["team"] != "a" || asV2.Annotations["note"] != "kept" {
		t.Errorf("v1 PerformedUpdate read as v2: spec %+v labels %v annotations %v", asV2.Spec, asV2.Labels, asV2.Annotations)
	}

	// Written as v2 (with a v2-only state), read as v1.
	cur := &brupopv2.BottlerocketShadow{ObjectMeta: meta("brs-new"), Spec: brupopv2.BottlerocketShadowSpec{State: brupopv2.StateRebootedIntoUpdate, Version: ptr.To("1.21.0")}}
	if err := c.Create(ctx, cur); err != nil {
		t.Fatal(err)
	}
	cur.Status = &brupopv2.BottlerocketShadowStatus{CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: brupopv2.StateErrorReset, CrashCount: 2}
	if err := c.Status().Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	var asV1 brupopv1.BottlerocketShadow
	if err := c.Get(ctx, client.ObjectKeyFromObject(cur), &asV1); err != nil {
		t.Fatal(err)
	}
	if asV1.Spec.State != brupopv1.StateRebootedIntoUpdate || asV1.Status == nil || asV1.Status.CurrentState != brupopv1.StateMonitoringUpdate ||
		asV1.Labels["team"] != "a" || asV1.Annotations["note"] != "kept" {
		t.Errorf("v2 read as v1: spec %+v status %+v labels %v annotations %v", asV1.Spec, asV1.Status, asV1.Labels, asV1.Annotations)
	}
	calls := ts.metricValue(t, "brupop_apiserver_requests_total", map[string]string{"path": "POST " + agentapi.PathConvert, "code": "200"})
	t.Logf("kube-apiserver called the conversion webhook %v times", calls)
	if calls == 0 {
		t.Error("the conversion webhook was never called")
	}
}
