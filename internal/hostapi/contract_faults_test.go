package hostapi_test

// Contract steps that need the simulator's controls: injected faults and a changing repository.
// They skip on a real host.

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

func TestContractFailureReporting(t *testing.T) {
	cases := []struct {
		name       string
		before     []hostapi.CommandType // run successfully first
		faults     hostapitest.Faults
		cmd        hostapi.CommandType
		wantState  hostapi.UpdateState
		wantStderr string
	}{{
		name:       "failed refresh drops Available to Idle and keeps the choice",
		before:     []hostapi.CommandType{hostapi.CommandRefresh},
		faults:     hostapitest.Faults{FailRefresh: "Failed to check for updates: Failed to fetch metadata"},
		cmd:        hostapi.CommandRefresh,
		wantState:  hostapi.StateIdle,
		wantStderr: "Failed to fetch metadata",
	}, {
		name:       "failed prepare stays Available",
		before:     []hostapi.CommandType{hostapi.CommandRefresh},
		faults:     hostapitest.Faults{FailPrepare: "Metadata error: checksum mismatch"},
		cmd:        hostapi.CommandPrepare,
		wantState:  hostapi.StateAvailable,
		wantStderr: "Starting update to 1.21.0\nMetadata error: checksum mismatch",
	}, {
		name:       "failed activate stays Staged",
		before:     []hostapi.CommandType{hostapi.CommandRefresh, hostapi.CommandPrepare},
		faults:     hostapitest.Faults{FailActivate: "Failed to write partition table"},
		cmd:        hostapi.CommandActivate,
		wantState:  hostapi.StateStaged,
		wantStderr: "Failed to write partition table",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.20.0", "1.21.0"}})
			tg.needSim("injects command failures")
			for _, cmd := range tc.before {
				tg.run(cmd)
			}
			tg.sim.SetFaults(tc.faults)
			st, err := tg.c.Run(tg.ctx(), tc.cmd)
			var failed *hostapi.CommandFailedError
			if !errors.As(err, &failed) {
				t.Fatalf("%s: %v, want a CommandFailedError", tc.cmd, err)
			}
			if failed.Command != tc.cmd || failed.ExitStatus != 1 || !strings.Contains(failed.Stderr, tc.wantStderr) {
				t.Errorf("CommandFailedError %+v, want %s, exit 1, stderr with %q", failed, tc.cmd, tc.wantStderr)
			}
			if st.State != tc.wantState || failed.State != tc.wantState {
				t.Errorf("state %s (error says %s), want %s", st.State, failed.State, tc.wantState)
			}
			if st.ChosenVersion() != "1.21.0" {
				t.Errorf("chosen update %q after a failure, want 1.21.0 kept", st.ChosenVersion())
			}
		})
	}
}

func TestContractBootFailureRollsBack(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.20.0", "1.21.0"}})
	tg.needSim("injects a boot failure")
	tg.updateToReady()
	tg.sim.SetFaults(hostapitest.Faults{FailBoot: true})
	if err := tg.c.Reboot(tg.ctx()); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if got := tg.waitBooted(); got != "1.20.0" {
		t.Fatalf("booted %s after a failed boot, want the old 1.20.0", got)
	}
	if _, err := tg.c.Status(tg.ctx()); !errors.Is(err, hostapi.ErrUninitialized) {
		t.Errorf("status after the rollback: %v, want uninitialized", err)
	}
	if st := tg.run(hostapi.CommandRefresh); st.State != hostapi.StateAvailable || st.ChosenVersion() != "1.21.0" {
		t.Errorf("refresh after the rollback: %s choosing %q, want the same 1.21.0 offered again", st.State, st.ChosenVersion())
	}
	events := tg.rebootEvents()
	if len(events) != 2 || !events[1].RolledBack || events[1].Version != "1.20.0" {
		t.Errorf("reboot events %+v, want a boot rolled back to 1.20.0", events)
	}
	// Cleared, the next attempt boots the new version.
	tg.sim.SetFaults(hostapitest.Faults{})
	tg.updateToReady()
	tg.sim.Reboot()
	if got := tg.waitBooted(); got != "1.21.0" {
		t.Errorf("booted %s on the second attempt, want 1.21.0", got)
	}
}

func TestContractPulledReleaseLeavesNoChoice(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.20.0", "1.21.0"}})
	tg.needSim("changes the repository")
	tg.run(hostapi.CommandRefresh)
	tg.run(hostapi.CommandPrepare)
	if err := tg.sim.SetRepository("1.20.0"); err != nil {
		t.Fatal(err)
	}
	st := tg.run(hostapi.CommandRefresh)
	if st.State != hostapi.StateStaged || st.ChosenUpdate != nil || st.StagedVersion() != "1.21.0" {
		t.Fatalf("refresh in Staged after the pull: %s choosing %+v staging %q, want Staged, no choice, 1.21.0 staged", st.State, st.ChosenUpdate, st.StagedVersion())
	}
	tg.expect("POST", "/actions/prepare-update", 404, "Previously chosen Update no longer exists")
	if _, err := tg.c.Prepare(tg.ctx()); !errors.Is(err, hostapi.ErrNoUpdate) {
		t.Errorf("Prepare: %v, want ErrNoUpdate", err)
	}
}

func TestContractRefreshInStagedOverwritesChoice(t *testing.T) {
	tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.20.0", "1.21.0"}})
	tg.needSim("publishes a release")
	tg.run(hostapi.CommandRefresh)
	tg.run(hostapi.CommandPrepare)
	if err := tg.sim.Publish("1.22.0"); err != nil {
		t.Fatal(err)
	}
	st := tg.run(hostapi.CommandRefresh)
	if st.State != hostapi.StateStaged || st.ChosenVersion() != "1.22.0" || st.StagedVersion() != "1.21.0" {
		t.Fatalf("refresh in Staged: %s choosing %q staging %q, want Staged choosing 1.22.0 with 1.21.0 staged", st.State, st.ChosenVersion(), st.StagedVersion())
	}
	// What boots is the staging partition, not the choice.
	tg.run(hostapi.CommandActivate)
	if err := tg.c.Reboot(tg.ctx()); err != nil {
		t.Fatal(err)
	}
	if got := tg.waitBooted(); got != "1.21.0" {
		t.Errorf("booted %s, want the staged 1.21.0", got)
	}
}

func TestContractFaultsSeenByTheClient(t *testing.T) {
	t.Run("500 for a while is retried", func(t *testing.T) {
		tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.21.0"}})
		tg.needSim("injects 500s")
		tg.sim.SetFaults(hostapitest.Faults{InternalErrors: 3})
		tg.expect("GET", "/os", 500, "Update dispatcher failed")
		if st := tg.run(hostapi.CommandRefresh); st.ChosenVersion() != "1.21.0" {
			t.Errorf("refresh through 500s chose %q, want 1.21.0", st.ChosenVersion())
		}
	})
	t.Run("garbage is malformed", func(t *testing.T) {
		tg := newTarget(t, hostapitest.Config{Version: "1.20.0"})
		tg.needSim("injects garbage")
		tg.sim.SetFaults(hostapitest.Faults{Garbage: true})
		if _, err := tg.c.OS(tg.ctx()); !errors.Is(err, hostapi.ErrMalformed) {
			t.Errorf("OS: %v, want ErrMalformed", err)
		}
	})
	t.Run("a hung API times out and recovers", func(t *testing.T) {
		tg := newTarget(t, hostapitest.Config{Version: "1.20.0"})
		tg.needSim("hangs the API")
		tg.sim.SetFaults(hostapitest.Faults{Hang: true})
		c := hostapi.New(hostapi.Options{SocketPath: tg.socket, RequestTimeout: 50 * time.Millisecond})
		if _, err := c.OS(tg.ctx()); !errors.Is(err, hostapi.ErrUnreachable) {
			t.Errorf("OS on a hung API: %v, want ErrUnreachable", err)
		}
		tg.sim.SetFaults(hostapitest.Faults{})
		if got := tg.osVersion(); got != "1.20.0" {
			t.Errorf("OS after the hang: %s", got)
		}
	})
	t.Run("a refused reboot is an error and the host stays up", func(t *testing.T) {
		tg := newTarget(t, hostapitest.Config{Version: "1.20.0"})
		tg.needSim("refuses the reboot")
		tg.sim.SetFaults(hostapitest.Faults{RefuseReboot: true})
		var apiErr *hostapi.APIError
		if err := tg.c.Reboot(tg.ctx()); !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
			t.Errorf("Reboot: %v, want an APIError 500", err)
		}
		if tg.sim.Rebooting() || tg.sim.Boots() != 0 {
			t.Errorf("host rebooted although the reboot was refused")
		}
	})
	t.Run("a reboot whose answer is lost is under way", func(t *testing.T) {
		tg := newTarget(t, hostapitest.Config{Version: "1.20.0", Available: []string{"1.21.0"}})
		tg.needSim("drops the reboot answer")
		tg.updateToReady()
		tg.sim.SetFaults(hostapitest.Faults{DropRebootAnswer: true})
		if err := tg.c.Reboot(tg.ctx()); err != nil {
			t.Errorf("Reboot with a dropped answer: %v, want nil", err)
		}
		if got := tg.waitBooted(); got != "1.21.0" {
			t.Errorf("booted %s, want 1.21.0", got)
		}
	})
}
