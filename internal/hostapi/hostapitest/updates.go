package hostapitest

import (
	"net/http"
	"slices"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// The plain-text error bodies of the real apiserver (docs/hostapi.md, "Error bodies").
const (
	msgLockHeld      = "Update lock held"
	msgStatusLocked  = "Unable to obtain shared lock for reading update status: Resource temporarily unavailable (os error 11)"
	msgUninitialized = "Update status is uninitialized, refresh-updates to initialize it"
	msgNotAllowed    = "Update action not allowed according to update state"
	msgNoUpdate      = "Previously chosen Update no longer exists"
	msgNoStaged      = "No update image applied to staging partition"
	msgDispatcher    = "Update dispatcher failed"
)

// reply is an answer: a status code and a plain-text body.
type reply struct {
	code int
	body string
}

// image returns the UpdateImage of version v on this host's variant and arch.
func (h *Host) image(v semver) *hostapi.UpdateImage {
	return &hostapi.UpdateImage{Arch: h.cfg.Arch, Version: v.String(), Variant: h.cfg.Variant}
}

// initStatusLocked creates the status as the first command of a boot does (docs/hostapi.md,
// "The first command of a boot").
func (h *Host) initStatusLocked() {
	if h.status != nil {
		return
	}
	h.status = &hostapi.Status{
		State:            hostapi.StateIdle,
		AvailableUpdates: []string{},
		ActivePartition: &hostapi.StagedImage{
			Image:      h.image(h.sets[h.running].version),
			NextToBoot: h.grubNext(false) == h.running,
		},
	}
}

// startCommand is POST /actions/<cmd>: it takes the lock, checks the state and starts the
// command in the background, as thar-be-updates does (docs/hostapi.md, "The update state
// machine").
func (h *Host) startCommand(cmd hostapi.CommandType) reply {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy {
		return reply{http.StatusLocked, msgLockHeld}
	}
	h.initStatusLocked()
	if r, ok := h.checkLocked(cmd); !ok {
		return r
	}
	finish := h.beginLocked(cmd)
	h.busy = true
	epoch := h.epoch
	d := h.cfg.CommandTime
	if t, ok := h.cfg.CommandTimes[cmd]; ok {
		d = t
	}
	h.goLocked(func() {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-h.done:
			return
		case <-t.C:
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.epoch != epoch {
			return // the host rebooted under the command: it never writes
		}
		h.busy = false
		exit, stderr := finish()
		h.recordLocked(cmd, exit, stderr)
	})
	return reply{http.StatusNoContent, ""}
}

// checkLocked applies which command runs in which state (docs/hostapi.md, "The update state
// machine").
func (h *Host) checkLocked(cmd hostapi.CommandType) (reply, bool) {
	st := h.status
	allowed := map[hostapi.CommandType][]hostapi.UpdateState{
		hostapi.CommandRefresh:    {st.State},
		hostapi.CommandPrepare:    {hostapi.StateAvailable, hostapi.StateStaged},
		hostapi.CommandActivate:   {hostapi.StateStaged},
		hostapi.CommandDeactivate: {hostapi.StateReady},
	}[cmd]
	switch {
	case !slices.Contains(allowed, st.State):
		return reply{http.StatusConflict, msgNotAllowed}, false
	case cmd == hostapi.CommandPrepare && st.ChosenUpdate == nil:
		return reply{http.StatusNotFound, msgNoUpdate}, false
	case (cmd == hostapi.CommandActivate || cmd == hostapi.CommandDeactivate) && st.StagingPartition == nil:
		return reply{http.StatusNotFound, msgNoStaged}, false
	}
	return reply{}, true
}

// beginLocked does what a command does synchronously and returns what it does when its time
// is up: the exit status and stderr of updog.
func (h *Host) beginLocked(cmd hostapi.CommandType) func() (int, string) {
	switch cmd {
	case hostapi.CommandRefresh:
		return h.refreshLocked
	case hostapi.CommandPrepare:
		return h.beginPrepareLocked()
	case hostapi.CommandActivate:
		return h.activateLocked
	}
	return h.deactivateLocked
}

// recordLocked writes most_recent_command with a fresh timestamp.
func (h *Host) recordLocked(cmd hostapi.CommandType, exit int, stderr string) {
	now := time.Now().UTC()
	if !now.After(h.lastStamp) {
		now = h.lastStamp.Add(time.Nanosecond)
	}
	h.lastStamp = now
	status := hostapi.CommandSuccess
	if exit != 0 {
		status = hostapi.CommandFailed
	}
	h.status.MostRecentCommand = &hostapi.CommandResult{
		Type: cmd, Status: status, Timestamp: now.Format(time.RFC3339Nano), ExitStatus: &exit, Stderr: &stderr,
	}
}

// versionLock is the version lock updog reads: the committed one, or "latest" while the
// StaleSettings fault holds the rendered file back.
func (h *Host) versionLock() string {
	if h.faults.StaleSettings {
		return hostapi.VersionLockLatest
	}
	return h.settings.VersionLock
}

// refreshLocked lists the repository and chooses an update (docs/hostapi.md, "Choosing an
// update").
func (h *Host) refreshLocked() (int, string) {
	st := h.status
	if msg := h.faults.FailRefresh; msg != "" {
		if st.State == hostapi.StateIdle || st.State == hostapi.StateAvailable {
			st.State = hostapi.StateIdle
		}
		return 1, msg + "\n"
	}
	st.AvailableUpdates = make([]string, 0, len(h.repo))
	for _, v := range h.repo {
		st.AvailableUpdates = append(st.AvailableUpdates, v.String())
	}
	st.ChosenUpdate = nil
	if v, ok := choose(h.sets[h.running].version, h.repo, h.versionLock()); ok {
		st.ChosenUpdate = h.image(v)
	}
	if st.State == hostapi.StateIdle || st.State == hostapi.StateAvailable {
		st.State = hostapi.StateIdle
		if st.ChosenUpdate != nil {
			st.State = hostapi.StateAvailable
		}
	}
	return 0, ""
}

// beginPrepareLocked makes updog's own choice and wipes the inactive set before writing it; on
// completion the image is written and the set marked valid.
func (h *Host) beginPrepareLocked() func() (int, string) {
	target, ok := choose(h.sets[h.running].version, h.repo, h.versionLock())
	if !ok {
		// "No update required": updog writes nothing, yet the state moves to Staged.
		return func() (int, string) {
			h.stageLocked()
			return 0, ""
		}
	}
	inactive := &h.sets[1-h.running]
	*inactive = partSet{}
	return func() (int, string) {
		out := "Starting update to " + target.String() + "\n"
		if msg := h.faults.FailPrepare; msg != "" {
			return 1, out + msg + "\n"
		}
		*inactive = partSet{version: target, triesLeft: 1}
		h.stageLocked()
		return 0, out
	}
}

// stageLocked records a successful prepare: the staging partition is chosen_update, copied
// from the status.
func (h *Host) stageLocked() {
	img := *h.status.ChosenUpdate
	h.status.StagingPartition = &hostapi.StagedImage{Image: &img}
	h.status.State = hostapi.StateStaged
}

// activateLocked is signpost's upgrade_to_inactive (docs/hostapi.md, "A/B partitions and boot
// flags").
func (h *Host) activateLocked() (int, string) {
	if msg := h.faults.FailActivate; msg != "" {
		return 1, msg + "\n"
	}
	in, act := &h.sets[1-h.running], &h.sets[h.running]
	if in.priority != 0 || in.successful || in.triesLeft == 0 {
		return 1, "Failed to set inactive partition as next to boot: inactive partition is not valid\n"
	}
	in.priority, act.priority = 2, 1
	h.status.StagingPartition.NextToBoot, h.status.ActivePartition.NextToBoot = true, false
	h.status.State = hostapi.StateReady
	return 0, ""
}

// deactivateLocked is signpost's cancel_upgrade (docs/hostapi.md, "A/B partitions and boot
// flags").
func (h *Host) deactivateLocked() (int, string) {
	h.sets[1-h.running].priority, h.sets[h.running].priority = 0, 2
	h.status.StagingPartition.NextToBoot, h.status.ActivePartition.NextToBoot = false, true
	h.status.State = hostapi.StateStaged
	return 0, ""
}
