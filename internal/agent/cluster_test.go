package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
	"github.com/bottlerocket-os/brupop-go/internal/fixture"
)

// clusterWait bounds every wait for the agent in these tests.
const clusterWait = 30 * time.Second

// cluster is what one agent sees of a cluster and what the Brupop API server does in it: an
// agent.Watch of the agent's Node and shadow, and an agentapi server that creates the shadow and
// writes its status, as the real ones do (internal/apiserver), with no control plane.
type cluster struct {
	mu      sync.Mutex
	node    *corev1.Node
	shadow  *v2.BottlerocketShadow // nil until created
	version int                    // the last resourceVersion given
	changed func(client.Object)    // the agent's, once Run was called
	wrote   chan struct{}          // closed and replaced by every write to the shadow
	calls   []string               // the API-server calls, "METHOD path", in order
}

// newCluster returns the cluster of node and its shadow (nil for none yet).
func newCluster(node *corev1.Node, shadow *v2.BottlerocketShadow) *cluster {
	node.UID = types.UID("uid-" + node.Name)
	c := &cluster{node: node, wrote: make(chan struct{})}
	if shadow != nil {
		c.write(func() { c.shadow = shadow })
	}
	return c
}

// Get reads the Node or the shadow, as agent.Watch.
func (c *cluster) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch o := obj.(type) {
	case *corev1.Node:
		if key.Name != c.node.Name {
			return apierrors.NewNotFound(corev1.Resource("nodes"), key.Name)
		}
		c.node.DeepCopyInto(o)
	case *v2.BottlerocketShadow:
		if c.shadow == nil || key != client.ObjectKeyFromObject(c.shadow) {
			return apierrors.NewNotFound(v2.GroupVersion.WithResource("bottlerocketshadows").GroupResource(), key.Name)
		}
		c.shadow.DeepCopyInto(o)
	default:
		return fmt.Errorf("cluster: the agent reads only its Node and shadow, not a %T", obj)
	}
	return nil
}

// Run is synced at once and tells the agent of every write until ctx ends, as agent.Watch.
func (c *cluster) Run(ctx context.Context, changed func(client.Object), synced func()) error {
	c.mu.Lock()
	c.changed = changed
	c.mu.Unlock()
	synced()
	<-ctx.Done()
	return nil
}

// write changes the shadow with change, gives it a new resourceVersion and tells the agent.
func (c *cluster) write(change func()) {
	c.mu.Lock()
	change()
	c.version++
	c.shadow.ResourceVersion = strconv.Itoa(c.version)
	now, changed := c.shadow.DeepCopy(), c.changed
	close(c.wrote)
	c.wrote = make(chan struct{})
	c.mu.Unlock()
	if changed != nil {
		changed(now)
	}
}

// setSpec writes the shadow's spec, as the controller does.
func (c *cluster) setSpec(spec v2.BottlerocketShadowSpec) {
	c.write(func() { c.shadow.Spec = spec })
}

// waitFor returns the shadow once cond holds for it, or fails the test after clusterWait.
func (c *cluster) waitFor(t *testing.T, what string, cond func(*v2.BottlerocketShadow) bool) *v2.BottlerocketShadow {
	t.Helper()
	deadline := time.NewTimer(clusterWait)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		s, wrote := c.shadow.DeepCopy(), c.wrote
		c.mu.Unlock()
		if s != nil && cond(s) {
			return s
		}
		select {
		case <-wrote:
		case <-deadline.C:
			t.Fatalf("no %s within %s; the shadow is %+v", what, clusterWait, s)
		}
	}
}

// calledServer returns the API-server calls so far.
func (c *cluster) calledServer() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// serve starts the cluster's API server and returns a client of it for the agent.
func (c *cluster) serve(t *testing.T) *agentapi.Client {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathShadow, c.createShadow)
	mux.HandleFunc("PUT "+agentapi.PathShadow, c.updateStatus)
	for _, p := range []string{agentapi.PathCordonAndDrain, agentapi.PathUncordon, agentapi.PathExcludeFromLB, agentapi.PathRemoveExclusionFromLB} {
		mux.HandleFunc("POST "+p, func(http.ResponseWriter, *http.Request) {})
	}
	ts := httptest.NewServer(c.ownNodeOnly(mux))
	t.Cleanup(ts.Close)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("agent-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &agentapi.Client{BaseURL: ts.URL, NodeName: c.node.Name, TokenPath: token, HTTPClient: ts.Client()}
}

// ownNodeOnly records each call and refuses one that does not name the Node by name and UID, as
// the real server's own-node authorization does.
func (c *cluster) ownNodeOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.calls = append(c.calls, r.Method+" "+r.URL.Path)
		own := r.Header.Get(agentapi.HeaderNodeName) == c.node.Name && r.Header.Get(agentapi.HeaderNodeUID) == string(c.node.UID)
		c.mu.Unlock()
		if !own {
			http.Error(w, "not the caller's own node", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (c *cluster) createShadow(w http.ResponseWriter, _ *http.Request) {
	c.mu.Lock()
	exists := c.shadow != nil
	c.mu.Unlock()
	if !exists {
		c.write(func() { c.shadow = fixture.Shadow(c.node.Name, fixture.NoStatus()) })
	}
	var s v2.BottlerocketShadow
	if err := c.Get(context.Background(), client.ObjectKey{Namespace: fixture.Namespace, Name: v2.ShadowName(c.node.Name)}, &s); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(&s)
}

func (c *cluster) updateStatus(w http.ResponseWriter, r *http.Request) {
	var status agentapi.UpdateStatusRequest
	if err := json.NewDecoder(r.Body).Decode(&status); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	exists := c.shadow != nil
	c.mu.Unlock()
	if !exists {
		http.Error(w, "no shadow to update", http.StatusNotFound)
		return
	}
	c.write(func() { c.shadow.Status = &status })
}
