package sim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

// This file holds the hooks the end-to-end stories use to disturb a running cluster: crash and
// restart a component, delete a node, publish a fixed release, move the controller's clock.
// The demo uses none of them.

// Client returns a client of the cluster with administrator rights (Brupop's v2 API, the
// built-in kinds and CRDs in its scheme), for stories that create or inspect objects.
func (c *Cluster) Client() client.Client { return c.client }

// AdminConfig returns a copy of the administrator's REST configuration.
func (c *Cluster) AdminConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// Target returns the version the rollout goes to: Options.To, or the version of the last
// PublishFix.
func (c *Cluster) Target() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.target
}

// Deleted reports how many nodes DeleteNode deleted.
func (c *Cluster) Deleted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.deleted)
}

// PublishFix releases version to every host as the fix of a bad release: it clears every
// node's fault first, and version becomes the rollout's target.
func (c *Cluster) PublishFix(version string) error {
	c.mu.Lock()
	c.target = version
	c.mu.Unlock()
	for _, n := range c.nodes {
		n.mu.Lock()
		n.fault = ""
		n.mu.Unlock()
		n.host.SetFaults(hostapitest.Faults{})
		if err := n.host.Publish(version); err != nil {
			return fmt.Errorf("sim: publish %s to %s: %w", version, n.name, err)
		}
	}
	return nil
}

// RestartAgent stops the agent of node and starts a new one, as a crash and the kubelet's
// restart would. While the node reboots no agent runs and it does nothing. It returns once the
// new agent runs.
func (c *Cluster) RestartAgent(ctx context.Context, node string) error {
	n, err := c.node(node)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	select {
	case n.restart <- done:
	case <-ctx.Done():
		return fmt.Errorf("sim: restart the agent of %s: %w", node, ctx.Err())
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sim: restart the agent of %s: %w", node, ctx.Err())
	}
}

// RestartAPIServer stops the API server (a drain round it runs ends with it) and starts a new
// one on the same address, with a fresh token; it returns once the new one answers.
func (c *Cluster) RestartAPIServer(ctx context.Context) error {
	if c.apiServer == nil {
		return errors.New("sim: the cluster runs no API server")
	}
	addr := c.listener.Addr().String()
	c.apiServer.stop() // closes the listener
	l, err := listenAgain(ctx, addr)
	if err != nil {
		return err
	}
	c.listener = l
	return c.startAPIServer(c.runCtx)
}

// listenAgain listens on addr again, retrying briefly while the old socket is released.
func listenAgain(ctx context.Context, addr string) (net.Listener, error) {
	var l net.Listener
	err := poll(ctx, 50*time.Millisecond, 10*time.Second, func(context.Context) (bool, string, error) {
		var err error
		l, err = net.Listen("tcp", addr)
		if err != nil {
			return false, err.Error(), nil
		}
		return true, "", nil
	})
	if err != nil {
		return nil, fmt.Errorf("sim: listen on %s again: %w", addr, err)
	}
	return l, nil
}

// RestartController stops the controller and starts a new one, which starts from what the
// cluster holds (its caches are new).
func (c *Cluster) RestartController(ctx context.Context) error {
	if c.controller == nil {
		return errors.New("sim: the cluster runs no controller")
	}
	c.controller.stop()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sim: restart the controller: %w", err)
	}
	return c.startController(c.runCtx)
}

// DeleteNode deletes the Node as a terminated instance would go: its agent stops for good and
// the Node object is deleted (its shadow follows by garbage collection).
func (c *Cluster) DeleteNode(ctx context.Context, node string) error {
	n, err := c.node(node)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.deleted[node] = true
	c.mu.Unlock()
	n.cancel()
	err = c.kube.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("sim: delete node %s: %w", node, err)
	}
	return nil
}

func (c *Cluster) node(name string) (*simNode, error) {
	for _, n := range c.nodes {
		if n.name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("sim: no node %s", name)
}
