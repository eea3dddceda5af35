package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// Annotations by which the stand-in remembers what it did to a Node, so that it undoes only that.
const (
	standinCordoned = "brupop.bottlerocket.aws/standin-cordoned"
	standinLabeled  = "brupop.bottlerocket.aws/standin-lb-labeled"
)

// standin is a small stand-in for the Brupop API server, serving the agentapi paths by writing
// to the real kube-apiserver with the admin client: shadow create with the Node as owner, status
// merge patch, cordon (a drain that evicts nothing), uncordon and the load-balancer label. It
// undoes only the cordon and label it made itself. It checks no token.
type standin struct {
	t  *testing.T
	c  client.Client
	ns string

	mu sync.Mutex
	// drainBusy is how many cordon-and-drain calls still answer 503 "in progress".
	drainBusy int
	// drains counts cordon-and-drain calls.
	drains int
	// excluded tells whether the Node carried the load-balancer label at the last drain.
	excluded bool
}

// newStandin serves a stand-in for namespace ns until the test ends and returns a client of it
// for node.
func newStandin(t *testing.T, c client.Client, ns, node string) (*standin, *agentapi.Client) {
	t.Helper()
	s := &standin{t: t, c: c, ns: ns}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathShadow, s.createShadow)
	mux.HandleFunc("PUT "+agentapi.PathShadow, s.updateStatus)
	mux.HandleFunc("POST "+agentapi.PathCordonAndDrain, s.cordonAndDrain)
	mux.HandleFunc("POST "+agentapi.PathUncordon, s.nodeAction(uncordon))
	mux.HandleFunc("POST "+agentapi.PathExcludeFromLB, s.nodeAction(excludeFromLB))
	mux.HandleFunc("POST "+agentapi.PathRemoveExclusionFromLB, s.nodeAction(includeInLB))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("stand-in-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, &agentapi.Client{BaseURL: srv.URL, NodeName: node, TokenPath: token, HTTPClient: srv.Client()}
}

// setDrainBusy makes the next n drains answer 503, as a server still evicting pods does.
func (s *standin) setDrainBusy(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drainBusy = n
}

// excludedAtDrain reports whether the Node was excluded from load balancers at the last drain.
func (s *standin) excludedAtDrain() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.excluded
}

// drainCalls returns how many cordon-and-drain calls arrived.
func (s *standin) drainCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drains
}

func (s *standin) fail(w http.ResponseWriter, code int, err error) {
	s.t.Logf("stand-in: %d %v", code, err)
	http.Error(w, err.Error(), code)
}

func (s *standin) node(r *http.Request) (*corev1.Node, error) {
	var n corev1.Node
	if err := s.c.Get(r.Context(), client.ObjectKey{Name: r.Header.Get(agentapi.HeaderNodeName)}, &n); err != nil {
		return nil, err
	}
	if string(n.UID) != r.Header.Get(agentapi.HeaderNodeUID) {
		return nil, fmt.Errorf("node UID %q is not %s's", r.Header.Get(agentapi.HeaderNodeUID), n.Name)
	}
	return &n, nil
}

func (s *standin) createShadow(w http.ResponseWriter, r *http.Request) {
	n, err := s.node(r)
	if err != nil {
		s.fail(w, http.StatusForbidden, err)
		return
	}
	brs := &brupopv2.BottlerocketShadow{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.ns, Name: brupopv2.ShadowName(n.Name),
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID}},
		},
		Spec: brupopv2.BottlerocketShadowSpec{State: brupopv2.StateIdle},
	}
	if err := s.c.Create(r.Context(), brs); err != nil && !apierrors.IsAlreadyExists(err) {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	_ = json.NewEncoder(w).Encode(brs)
}

func (s *standin) updateStatus(w http.ResponseWriter, r *http.Request) {
	n, err := s.node(r)
	if err != nil {
		s.fail(w, http.StatusForbidden, err)
		return
	}
	var status brupopv2.BottlerocketShadowStatus
	if err := json.NewDecoder(r.Body).Decode(&status); err != nil {
		s.fail(w, http.StatusBadRequest, err)
		return
	}
	var brs brupopv2.BottlerocketShadow
	if err := s.c.Get(r.Context(), client.ObjectKey{Namespace: s.ns, Name: brupopv2.ShadowName(n.Name)}, &brs); err != nil {
		s.fail(w, http.StatusNotFound, err)
		return
	}
	orig := brs.DeepCopy()
	brs.Status = &status
	if err := s.c.Status().Patch(r.Context(), &brs, client.MergeFrom(orig)); err != nil {
		s.fail(w, http.StatusInternalServerError, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *standin) cordonAndDrain(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.drains++
	busy := s.drainBusy > 0
	if busy {
		s.drainBusy--
	}
	s.mu.Unlock()
	code, err := s.editNode(r, func(n *corev1.Node) {
		s.mu.Lock()
		_, s.excluded = n.Labels[brupopv2.ExcludeFromLBLabel]
		s.mu.Unlock()
		cordon(n)
	})
	if err != nil {
		s.fail(w, code, err)
		return
	}
	if busy {
		http.Error(w, "drain in progress", http.StatusServiceUnavailable)
	}
}

// nodeAction serves a change of the caller's Node made by edit.
func (s *standin) nodeAction(edit func(*corev1.Node)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if code, err := s.editNode(r, edit); err != nil {
			s.fail(w, code, err)
		}
	}
}

// editNode patches the caller's Node with edit; on failure it returns the status code to answer.
func (s *standin) editNode(r *http.Request, edit func(*corev1.Node)) (int, error) {
	n, err := s.node(r)
	if err != nil {
		return http.StatusForbidden, err
	}
	orig := n.DeepCopy()
	edit(n)
	if err := s.c.Patch(r.Context(), n, client.MergeFrom(orig)); err != nil {
		return http.StatusInternalServerError, err
	}
	return 0, nil
}

func cordon(n *corev1.Node) {
	if !n.Spec.Unschedulable {
		n.Spec.Unschedulable = true
		setAnnotation(n, standinCordoned)
	}
}

func uncordon(n *corev1.Node) {
	if _, ok := n.Annotations[standinCordoned]; ok {
		n.Spec.Unschedulable = false
		delete(n.Annotations, standinCordoned)
	}
}

func excludeFromLB(n *corev1.Node) {
	if _, ok := n.Labels[brupopv2.ExcludeFromLBLabel]; !ok {
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels[brupopv2.ExcludeFromLBLabel] = "true"
		setAnnotation(n, standinLabeled)
	}
}

func includeInLB(n *corev1.Node) {
	if _, ok := n.Annotations[standinLabeled]; ok {
		delete(n.Labels, brupopv2.ExcludeFromLBLabel)
		delete(n.Annotations, standinLabeled)
	}
}

func setAnnotation(n *corev1.Node, key string) {
	if n.Annotations == nil {
		n.Annotations = map[string]string{}
	}
	n.Annotations[key] = "true"
}

// newNode creates a Node for one test and deletes it when the test ends.
func newNode(t *testing.T, c client.Client) *corev1.Node {
	t.Helper()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "agent-node-",
		Labels: map[string]string{brupopv2.NodeOptInLabel: brupopv2.NodeOptInValue}}}
	if err := c.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Delete(context.Background(), n, &client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	return n
}
