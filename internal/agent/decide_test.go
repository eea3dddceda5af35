package agent

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/utils/ptr"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/statemachine"
)

const (
	oldV = "1.20.0"
	newV = "1.21.0"
)

// obs builds an Observation: spec state and version, reported state (empty for no status) and
// the host.
func obs(spec v2.State, version string, reported v2.State, host HostView) Observation {
	o := Observation{Spec: v2.BottlerocketShadowSpec{State: spec}, Host: host}
	if version != "" {
		o.Spec.Version = ptr.To(version)
	}
	if reported != "" {
		o.Status = &v2.BottlerocketShadowStatus{CurrentState: reported, CurrentVersion: oldV, TargetVersion: newV}
	}
	return o
}

func host(running string, state hostapi.UpdateState, staged string) HostView {
	return HostView{Running: running, State: state, Staged: staged}
}

func TestDecide(t *testing.T) {
	const (
		idle     = v2.StateIdle
		staged   = v2.StateStagedAndPerformedUpdate
		rebooted = v2.StateRebootedIntoUpdate
		monitor  = v2.StateMonitoringUpdate
		errReset = v2.StateErrorReset
	)
	tests := []struct {
		name string
		in   Observation
		want Decision
	}{
		{"first status", obs(idle, "", "", host(oldV, "", "")), Decision{Report: idle}},
		{"idle at rest", obs(idle, "", idle, host(oldV, hostapi.StateAvailable, "")), Decision{}},
		{"idle after failure recovers", obs(idle, newV, errReset, host(oldV, hostapi.StateStaged, newV)),
			Decision{Step: StepRecover, Report: idle}},
		{"abandoned activated update is deactivated", obs(idle, newV, staged, host(oldV, hostapi.StateReady, newV)),
			Decision{Step: StepDeactivate}},
		{"activated update under reported Idle is deactivated", obs(idle, newV, idle, host(oldV, hostapi.StateReady, newV)),
			Decision{Step: StepDeactivate}},
		{"abandoned drain is undone", obs(idle, newV, staged, host(oldV, hostapi.StateStaged, newV)),
			Decision{Step: StepRecover, Report: idle}},
		{"after monitoring back to idle", obs(idle, newV, monitor, host(newV, hostapi.StateIdle, "")),
			Decision{Step: StepRecover, Report: idle}},
		{"spec ErrorReset is ignored", obs(errReset, newV, idle, host(oldV, "", "")), Decision{}},
		{"waits for the controller after a failure", obs(staged, newV, errReset, host(oldV, hostapi.StateAvailable, "")), Decision{}},
		{"no version", obs(staged, "", idle, host(oldV, hostapi.StateAvailable, "")),
			Decision{Failure: &Failure{Reason: statemachine.ReasonAgentError}}},
		{"stage from available", obs(staged, newV, idle, host(oldV, hostapi.StateAvailable, "")), Decision{Step: StepStage}},
		{"stage from uninitialized", obs(staged, newV, idle, host(oldV, "", "")), Decision{Step: StepStage}},
		{"stage replaces another staged version", obs(staged, newV, idle, host(oldV, hostapi.StateStaged, "1.20.5")), Decision{Step: StepStage}},
		{"activate the staged version", obs(staged, newV, idle, host(oldV, hostapi.StateStaged, newV)), Decision{Step: StepActivate}},
		{"already activated", obs(staged, newV, idle, host(oldV, hostapi.StateReady, newV)), Decision{Report: staged}},
		{"activated another version", obs(staged, newV, idle, host(oldV, hostapi.StateReady, "1.20.5")), Decision{Step: StepDeactivate}},
		{"already runs the version", obs(staged, newV, idle, host(newV, hostapi.StateIdle, "")), Decision{Report: staged}},
		{"staged reached", obs(staged, newV, staged, host(oldV, hostapi.StateReady, newV)), Decision{}},
		{"drain and reboot", obs(rebooted, newV, staged, host(oldV, hostapi.StateReady, newV)), Decision{Step: StepDrainAndReboot}},
		{"rebooted into the update", obs(rebooted, newV, staged, host(newV, "", "")),
			Decision{Step: StepRecover, Report: rebooted}},
		{"re-activate a deactivated update", obs(rebooted, newV, staged, host(oldV, hostapi.StateStaged, newV)), Decision{Step: StepActivate}},
		{"boot rolled back", obs(rebooted, newV, staged, host(oldV, "", "")),
			Decision{Failure: &Failure{Reason: statemachine.ReasonBootRolledBack}}},
		{"boot rolled back, status refreshed", obs(rebooted, newV, staged, host(oldV, hostapi.StateAvailable, "")),
			Decision{Failure: &Failure{Reason: statemachine.ReasonBootRolledBack}}},
		{"booted a third version", obs(rebooted, newV, staged, host("1.20.5", hostapi.StateIdle, "")),
			Decision{Failure: &Failure{Reason: statemachine.ReasonVersionMismatch}}},
		{"not prepared for the reboot", obs(rebooted, newV, idle, host(oldV, hostapi.StateAvailable, "")),
			Decision{Failure: &Failure{Reason: statemachine.ReasonHostAPIError}}},
		{"activated another version before the reboot", obs(rebooted, newV, staged, host(oldV, hostapi.StateReady, "1.20.5")),
			Decision{Failure: &Failure{Reason: statemachine.ReasonHostAPIError}}},
		{"rebooted reached", obs(rebooted, newV, rebooted, host(newV, hostapi.StateIdle, "")), Decision{}},
		{"monitoring", obs(monitor, newV, rebooted, host(newV, hostapi.StateIdle, "")),
			Decision{Step: StepRecover, Report: monitor}},
		{"monitoring the wrong version", obs(monitor, newV, rebooted, host(oldV, hostapi.StateIdle, "")),
			Decision{Failure: &Failure{Reason: statemachine.ReasonVersionMismatch}}},
	}
	ignore := cmp.Options{
		cmpopts.IgnoreFields(Decision{}, "Message"),
		cmpopts.IgnoreFields(Failure{}, "Message"),
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in)
			if diff := cmp.Diff(tt.want, got, ignore); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s\nmessage: %s", diff, got.Message)
			}
			if got.Message == "" {
				t.Error("Decide() gave no message")
			}
		})
	}
}

func TestDecideFailureMessages(t *testing.T) {
	d := Decide(obs(v2.StateRebootedIntoUpdate, newV, v2.StateStagedAndPerformedUpdate, host(oldV, "", "")))
	want := "BootRolledBack: the host booted back into 1.20.0 after its reboot into 1.21.0: the new version failed to boot"
	if d.Failure == nil || d.Failure.Error() != want {
		t.Errorf("failure = %v, want %q", d.Failure, want)
	}
}

// FuzzDecide checks Decide's invariants on any shadow and host: it only reports the desired
// state, reboots only into an activated spec.version, and never acts while waiting for the
// controller after a failure.
func FuzzDecide(f *testing.F) {
	f.Add("RebootedIntoUpdate", "1.21.0", "StagedAndPerformedUpdate", "1.20.0", "Ready", "1.21.0")
	f.Add("Idle", "", "ErrorReset", "1.20.0", "", "")
	f.Add("StagedAndPerformedUpdate", "1.21.0", "Idle", "1.21.0", "Staged", "1.21.0")
	f.Fuzz(func(t *testing.T, spec, version, reported, running, state, staged string) {
		o := obs(v2.State(spec), version, v2.State(reported), host(running, hostapi.UpdateState(state), staged))
		d := Decide(o)
		if d.Report != "" && d.Report != o.Spec.State {
			t.Errorf("reports %s for spec %s", d.Report, o.Spec.State)
		}
		if d.Step == StepDrainAndReboot && (o.Spec.State != v2.StateRebootedIntoUpdate ||
			o.Host.State != hostapi.StateReady || o.Host.Staged != version || version == "") {
			t.Errorf("reboots with spec %+v and host %+v", o.Spec, o.Host)
		}
		if reported == string(v2.StateErrorReset) && spec != string(v2.StateIdle) && (d.Step != StepNone || d.Failure != nil) {
			t.Errorf("acts (%+v) while the controller has to reset the spec", d)
		}
		if d.Failure != nil && (d.Step != StepNone || d.Report != "") {
			t.Errorf("a failure with a step or report: %+v", d)
		}
	})
}
