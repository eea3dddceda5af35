package hostapi_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// Status documents of each update state and a fresh one (docs/hostapi.md, "The update status
// document"), plus the shapes upstream Brupop fails to parse.
var statusExamples = map[string]string{
	"idle":      `{"update_state":"Idle","available_updates":["1.26.1","1.26.0","1.25.0"],"chosen_update":null,"active_partition":{"image":{"arch":"x86_64","version":"1.26.1","variant":"aws-k8s-1.31"},"next_to_boot":true},"staging_partition":null,"most_recent_command":{"cmd_type":"refresh","cmd_status":"Success","timestamp":"2024-11-05T17:02:11.532884125Z","exit_status":0,"stderr":""}}`,
	"available": `{"update_state":"Available","available_updates":["1.26.2","1.26.1","1.26.0","1.25.0"],"chosen_update":{"arch":"x86_64","version":"1.26.2","variant":"aws-k8s-1.31"},"active_partition":{"image":{"arch":"x86_64","version":"1.26.1","variant":"aws-k8s-1.31"},"next_to_boot":true},"staging_partition":null,"most_recent_command":{"cmd_type":"refresh","cmd_status":"Success","timestamp":"2024-11-05T17:05:40.118203771Z","exit_status":0,"stderr":""}}`,
	"staged":    `{"update_state":"Staged","available_updates":["1.26.2","1.26.1","1.26.0","1.25.0"],"chosen_update":{"arch":"x86_64","version":"1.26.2","variant":"aws-k8s-1.31"},"active_partition":{"image":{"arch":"x86_64","version":"1.26.1","variant":"aws-k8s-1.31"},"next_to_boot":true},"staging_partition":{"image":{"arch":"x86_64","version":"1.26.2","variant":"aws-k8s-1.31"},"next_to_boot":false},"most_recent_command":{"cmd_type":"prepare","cmd_status":"Success","timestamp":"2024-11-05T17:07:02.904417213Z","exit_status":0,"stderr":"Starting update to 1.26.2\n"}}`,
	"ready":     `{"update_state":"Ready","available_updates":["1.26.2","1.26.1","1.26.0","1.25.0"],"chosen_update":{"arch":"x86_64","version":"1.26.2","variant":"aws-k8s-1.31"},"active_partition":{"image":{"arch":"x86_64","version":"1.26.1","variant":"aws-k8s-1.31"},"next_to_boot":false},"staging_partition":{"image":{"arch":"x86_64","version":"1.26.2","variant":"aws-k8s-1.31"},"next_to_boot":true},"most_recent_command":{"cmd_type":"activate","cmd_status":"Success","timestamp":"2024-11-05T17:07:10.23348811Z","exit_status":0,"stderr":""}}`,
	"fresh":     `{"update_state":"Idle","available_updates":[],"chosen_update":null,"active_partition":{"image":{"arch":"x86_64","version":"1.26.1","variant":"aws-k8s-1.31"},"next_to_boot":true},"staging_partition":null,"most_recent_command":null}`,
	"deactivated, null exit and stderr, unknown fields": `{"update_state":"Staged","available_updates":null,"chosen_update":null,"active_partition":null,"staging_partition":{"image":null,"next_to_boot":null},"most_recent_command":{"cmd_type":"deactivate","cmd_status":"Unknown","timestamp":"2024-11-05T17:07:10Z","exit_status":null,"stderr":null},"future":1}`,
	"unknown enumerations":                              `{"update_state":"Downloading","most_recent_command":{"cmd_type":"rollback","cmd_status":"Cancelled","timestamp":"x","exit_status":-9}}`,
}

var osExamples = []string{
	`{"pretty_name":"Bottlerocket OS 1.26.1 (aws-k8s-1.31)","variant_id":"aws-k8s-1.31","version_id":"1.26.1","build_id":"6ef1139f","arch":"x86_64"}`,
	`{"version_id":"1.26.1"}`,
	`{"pretty_name":null,"variant_id":"aws-k8s-1.31","version_id":"1.26.1","build_id":null,"arch":"aarch64","extra":[1]}`,
}

func TestDecodeStatus(t *testing.T) {
	cases := []struct {
		name        string
		doc         string
		wantState   hostapi.UpdateState
		wantCmd     hostapi.CommandType
		wantChosen  string
		wantStaged  string
		wantStamp   string
		wantNilExit bool
	}{
		{name: "idle", doc: statusExamples["idle"], wantState: "Idle", wantCmd: "refresh", wantStamp: "2024-11-05T17:02:11.532884125Z"},
		{name: "available", doc: statusExamples["available"], wantState: "Available", wantCmd: "refresh", wantChosen: "1.26.2", wantStamp: "2024-11-05T17:05:40.118203771Z"},
		{name: "staged", doc: statusExamples["staged"], wantState: "Staged", wantCmd: "prepare", wantChosen: "1.26.2", wantStaged: "1.26.2", wantStamp: "2024-11-05T17:07:02.904417213Z"},
		{name: "ready", doc: statusExamples["ready"], wantState: "Ready", wantCmd: "activate", wantChosen: "1.26.2", wantStaged: "1.26.2", wantStamp: "2024-11-05T17:07:10.23348811Z"},
		{name: "freshly initialized has no command", doc: statusExamples["fresh"], wantState: "Idle"},
		{name: "deactivate with null fields", doc: statusExamples["deactivated, null exit and stderr, unknown fields"], wantState: "Staged", wantCmd: "deactivate", wantStamp: "2024-11-05T17:07:10Z", wantNilExit: true},
		{name: "unknown strings are kept", doc: statusExamples["unknown enumerations"], wantState: "Downloading", wantCmd: "rollback", wantStamp: "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, err := hostapi.DecodeStatus([]byte(tc.doc))
			if err != nil {
				t.Fatalf("DecodeStatus: %v", err)
			}
			var cmd hostapi.CommandType
			if st.MostRecentCommand != nil {
				cmd = st.MostRecentCommand.Type
				if tc.wantNilExit != (st.MostRecentCommand.ExitStatus == nil) {
					t.Errorf("exit_status = %v, want nil %t", st.MostRecentCommand.ExitStatus, tc.wantNilExit)
				}
			}
			got := []string{string(st.State), string(cmd), st.ChosenVersion(), st.StagedVersion(), st.LastTimestamp()}
			want := []string{string(tc.wantState), string(tc.wantCmd), tc.wantChosen, tc.wantStaged, tc.wantStamp}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("state, command, chosen, staged, timestamp (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeOS(t *testing.T) {
	cases := []struct {
		name    string
		doc     string
		want    hostapi.OSInfo
		wantErr bool
	}{
		{name: "spec example", doc: osExamples[0], want: hostapi.OSInfo{PrettyName: "Bottlerocket OS 1.26.1 (aws-k8s-1.31)", VariantID: "aws-k8s-1.31", VersionID: "1.26.1", BuildID: "6ef1139f", Arch: "x86_64"}},
		{name: "prefix answer", doc: osExamples[1], want: hostapi.OSInfo{VersionID: "1.26.1"}},
		{name: "nulls and unknown fields", doc: osExamples[2], want: hostapi.OSInfo{VariantID: "aws-k8s-1.31", VersionID: "1.26.1", Arch: "aarch64"}},
		{name: "no version is an error", doc: `{"variant_id":"aws-k8s-1.31"}`, wantErr: true},
		{name: "null is an error", doc: `null`, wantErr: true},
		{name: "kebab-case from openapi.yaml is not the wire format", doc: `{"version-id":"1.26.1"}`, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hostapi.DecodeOS([]byte(tc.doc))
			if (err != nil) != tc.wantErr {
				t.Fatalf("DecodeOS: %v, want error %t", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeOS (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzDecodeStatus(f *testing.F) {
	for _, doc := range statusExamples {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := hostapi.DecodeStatus(data)
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		again, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		st2, err := hostapi.DecodeStatus(again)
		if err != nil {
			t.Fatalf("DecodeStatus of its own encoding %s: %v", again, err)
		}
		if diff := cmp.Diff(st, st2); diff != "" {
			t.Errorf("round trip changed the status (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeOS(f *testing.F) {
	for _, doc := range osExamples {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := hostapi.DecodeOS(data)
		if err != nil {
			return
		}
		if o.VersionID == "" {
			t.Fatalf("DecodeOS accepted %q without a version_id", data)
		}
		again, err := json.Marshal(o)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		o2, err := hostapi.DecodeOS(again)
		if err != nil || o2 != o {
			t.Errorf("round trip: %+v, %v; want %+v", o2, err, o)
		}
	})
}
