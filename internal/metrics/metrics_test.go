package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestGaugesKeepVanishedValuesAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, []string{"Idle", "MonitoringUpdate"}, []string{"Paused"})
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(Snapshot{States: map[string]int{"Idle": 2}, Versions: map[string]int{"1.19.0": 1, "1.20.0": 1}, Halted: 1})
	m.Observe(Snapshot{States: map[string]int{"Idle": 1, "StagedAndPerformedUpdate": 1}, Versions: map[string]int{"1.20.0": 2}})
	m.Transition("Idle", "StagedAndPerformedUpdate", 3*time.Second)
	m.Failure("MonitoringFailed", "Release")
	want := `
# HELP brupop_hosts_state Number of Bottlerocket hosts per update state (status.current_state).
# TYPE brupop_hosts_state gauge
brupop_hosts_state{state="Idle"} 1
brupop_hosts_state{state="MonitoringUpdate"} 0
brupop_hosts_state{state="StagedAndPerformedUpdate"} 1
# HELP brupop_hosts_version Number of Bottlerocket hosts per running version.
# TYPE brupop_hosts_version gauge
brupop_hosts_version{bottlerocket_version="1.19.0"} 0
brupop_hosts_version{bottlerocket_version="1.20.0"} 2
# HELP brupop_halted_rollouts Number of target versions whose rollout is halted.
# TYPE brupop_halted_rollouts gauge
brupop_halted_rollouts 0
# HELP brupop_nodes_waiting Number of nodes with an update to make that do not start now, per reason.
# TYPE brupop_nodes_waiting gauge
brupop_nodes_waiting{reason="Paused"} 0
# HELP brupop_state_transitions_total Desired state changes written by the controller.
# TYPE brupop_state_transitions_total counter
brupop_state_transitions_total{from="Idle",to="StagedAndPerformedUpdate"} 1
# HELP brupop_update_failures_total Failed node updates, by reason and class (Release or Operational).
# TYPE brupop_update_failures_total counter
brupop_update_failures_total{class="Release",reason="MonitoringFailed"} 1
`
	names := []string{HostsStateName, HostsVersionName, HaltedName, WaitingName, TransitionsName, FailuresName}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.durations); n != 1 {
		t.Errorf("state duration series = %d, want 1", n)
	}
}

func TestNewRejectsDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg, nil, nil); err == nil {
		t.Error("second New on the same registry succeeded")
	}
}
