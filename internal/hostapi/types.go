package hostapi

import (
	"encoding/json"
	"errors"
	"fmt"
)

// UpdateState is the host's update state, update_state in the status document. Values the
// package does not know are kept as they are.
type UpdateState string

// The update states of the thar-be-updates state machine.
const (
	StateIdle      UpdateState = "Idle"
	StateAvailable UpdateState = "Available"
	StateStaged    UpdateState = "Staged"
	StateReady     UpdateState = "Ready"
)

// CommandType names an asynchronous update command, cmd_type in the status document. Values the
// package does not know are kept as they are.
type CommandType string

// The update commands the host runs in the background.
const (
	CommandRefresh    CommandType = "refresh"
	CommandPrepare    CommandType = "prepare"
	CommandActivate   CommandType = "activate"
	CommandDeactivate CommandType = "deactivate"
)

// CommandStatus is the outcome of an update command, cmd_status in the status document.
type CommandStatus string

// The command outcomes the host reports. CommandUnknown exists in the host's enum but current
// hosts never write it.
const (
	CommandSuccess CommandStatus = "Success"
	CommandFailed  CommandStatus = "Failed"
	CommandUnknown CommandStatus = "Unknown"
)

// UpdateImage identifies an OS image. Its fields are in the host's JSON order.
type UpdateImage struct {
	Arch    string `json:"arch"`
	Version string `json:"version"`
	Variant string `json:"variant"`
}

// StagedImage is one partition set: the image it holds and whether the host boots it next.
type StagedImage struct {
	Image      *UpdateImage `json:"image"`
	NextToBoot bool         `json:"next_to_boot"`
}

// CommandResult is the result of the most recent update command that ran in this boot.
// Timestamp is opaque: compare it for equality only.
type CommandResult struct {
	Type       CommandType   `json:"cmd_type"`
	Status     CommandStatus `json:"cmd_status"`
	Timestamp  string        `json:"timestamp"`
	ExitStatus *int          `json:"exit_status"`
	Stderr     *string       `json:"stderr"`
}

// Status is the host's update status document, GET /updates/status. Every pointer may be nil.
type Status struct {
	State             UpdateState    `json:"update_state"`
	AvailableUpdates  []string       `json:"available_updates"`
	ChosenUpdate      *UpdateImage   `json:"chosen_update"`
	ActivePartition   *StagedImage   `json:"active_partition"`
	StagingPartition  *StagedImage   `json:"staging_partition"`
	MostRecentCommand *CommandResult `json:"most_recent_command"`
}

// LastTimestamp returns the timestamp of the most recent command, or "" when none ran.
func (s Status) LastTimestamp() string {
	if s.MostRecentCommand == nil {
		return ""
	}
	return s.MostRecentCommand.Timestamp
}

// ChosenVersion returns the version of chosen_update, or "" when there is none.
func (s Status) ChosenVersion() string {
	if s.ChosenUpdate == nil {
		return ""
	}
	return s.ChosenUpdate.Version
}

// StagedVersion returns the version held by the staging partition, or "" when nothing is staged.
func (s Status) StagedVersion() string {
	if s.StagingPartition == nil || s.StagingPartition.Image == nil {
		return ""
	}
	return s.StagingPartition.Image.Version
}

// OSInfo is the running OS as GET /os reports it.
type OSInfo struct {
	PrettyName string `json:"pretty_name"`
	VariantID  string `json:"variant_id"`
	VersionID  string `json:"version_id"`
	BuildID    string `json:"build_id"`
	Arch       string `json:"arch"`
}

// DecodeStatus decodes an update status document. It accepts null for every field and unknown
// strings for every enumeration; it fails only on a document that is not a JSON object of the
// right shape, with an error wrapping ErrMalformed.
func DecodeStatus(data []byte) (Status, error) {
	var s *Status
	if err := json.Unmarshal(data, &s); err != nil {
		return Status{}, fmt.Errorf("%w: update status: %w", ErrMalformed, err)
	}
	if s == nil {
		return Status{}, fmt.Errorf("%w: update status is null", ErrMalformed)
	}
	return *s, nil
}

// DecodeOS decodes the answer of GET /os. It fails with an error wrapping ErrMalformed when the
// document is not a JSON object or has no version_id, the one field callers cannot do without.
func DecodeOS(data []byte) (OSInfo, error) {
	var o *OSInfo
	if err := json.Unmarshal(data, &o); err != nil {
		return OSInfo{}, fmt.Errorf("%w: os: %w", ErrMalformed, err)
	}
	if o == nil || o.VersionID == "" {
		return OSInfo{}, fmt.Errorf("%w: os: %w", ErrMalformed, errors.New("no version_id"))
	}
	return *o, nil
}
