package sim

import (
	"bytes"
	"context"
	"testing"
	"time"
)

func TestRolloutFourNodes(t *testing.T) {
	if !DefaultComponents().complete() {
		t.Skip("the API server, controller and agent are not wired into DefaultComponents yet")
	}
	opts := DefaultOptions()
	opts.Nodes, opts.MaxConcurrent = 4, 2
	c := startCluster(t, opts)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	var out bytes.Buffer
	s, err := c.Rollout(ctx, NewLogView(&out, c.Options))
	if err != nil {
		t.Fatalf("Rollout: %v\n%s", err, out.String())
	}
	if !s.OK || s.Updated != 4 || s.MaxInFlight > 2 {
		t.Fatalf("rollout: ok=%t updated=%d maxInFlight=%d, want ok, 4 updated, at most 2 in flight\n%s", s.OK, s.Updated, s.MaxInFlight, out.String())
	}
	if s.Evictions == 0 {
		t.Errorf("no workload pod was evicted: drains did no work\n%s", out.String())
	}
}
