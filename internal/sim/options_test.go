package sim

import (
	"strings"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		in      string
		want    Fault
		wantErr string
	}{
		{in: "node-03:boot", want: Fault{Node: "node-03", Step: StepBoot}},
		{in: "node-01:monitor", want: Fault{Node: "node-01", Step: StepMonitor}},
		{in: "node-01", wantErr: "want NODE:STEP"},
		{in: ":boot", wantErr: "want NODE:STEP"},
		{in: "node-01:reboot", wantErr: `step "reboot" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFault(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseFault(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseFault(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Options)
		wantTo  string
		wantErr string
	}{
		{name: "defaults take the next minor", change: func(*Options) {}, wantTo: "1.21.0"},
		{name: "explicit target", change: func(o *Options) { o.To = "1.20.1" }, wantTo: "1.20.1"},
		{name: "same version", change: func(o *Options) { o.To = o.From }, wantErr: "must differ"},
		{name: "no nodes", change: func(o *Options) { o.Nodes = 0 }, wantErr: "--nodes 0"},
		{name: "no concurrency", change: func(o *Options) { o.MaxConcurrent = 0 }, wantErr: "--max-concurrent 0"},
		{name: "negative reboot", change: func(o *Options) { o.RebootTime = -time.Second }, wantErr: "--reboot-time"},
		{name: "fault on unknown node", change: func(o *Options) { o.Faults = []Fault{{Node: "node-99", Step: StepBoot}} }, wantErr: "no such node"},
		{name: "bad from", change: func(o *Options) { o.From = "1.20" }, wantErr: "MAJOR.MINOR.PATCH"},
		{name: "also offer without the cap", change: func(o *Options) { o.AlsoOffer = []string{"1.22.0"} }, wantErr: "--max-version 1.21.0"},
		{name: "also offer with the cap", change: func(o *Options) { o.AlsoOffer, o.MaxVersion = []string{"1.22.0"}, "1.21.0" }, wantTo: "1.21.0"},
		{name: "too many zones", change: func(o *Options) { o.Zones = 27 }, wantErr: "--zones 27"},
		{name: "negative soak", change: func(o *Options) { o.ReleaseSoak = -time.Second }, wantErr: "--release-soak"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.change(&o)
			err := o.Validate()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Validate() = %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || o.To != tt.wantTo {
				t.Fatalf("Validate() = %v, To %q; want nil, %q", err, o.To, tt.wantTo)
			}
		})
	}
}

func TestFinished(t *testing.T) {
	o := DefaultOptions()
	o.Nodes, o.Faults = 2, []Fault{{Node: "node-02", Step: StepBoot}}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Options: o}
	updated := NodeRow{Name: "node-01", Updated: true}
	tests := []struct {
		name string
		snap Snapshot
		want bool
	}{
		{name: "all updated", snap: Snapshot{Rows: []NodeRow{updated, {Name: "node-02", Updated: true}}}, want: true},
		{name: "told to fail and failed", snap: Snapshot{Rows: []NodeRow{updated, {Name: "node-02", Fail: true}}}, want: true},
		{name: "still in flight", snap: Snapshot{Rows: []NodeRow{updated, {Name: "node-02", InFlight: true}}}, want: false},
		{name: "a node missing", snap: Snapshot{Rows: []NodeRow{updated}}, want: false},
		{name: "waiting behind a halt", snap: Snapshot{Halted: true, Rows: []NodeRow{{Name: "node-01"}, {Name: "node-02", Fail: true}}}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.finished(tt.snap); got != tt.want {
				t.Errorf("finished() = %t, want %t", got, tt.want)
			}
		})
	}
}

func TestZoneOf(t *testing.T) {
	got := []string{ZoneOf(0, 3), ZoneOf(1, 3), ZoneOf(2, 3), ZoneOf(3, 3), ZoneOf(4, 0)}
	want := []string{"zone-a", "zone-b", "zone-c", "zone-a", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ZoneOf: %v, want %v", got, want)
			break
		}
	}
}

func TestWaves(t *testing.T) {
	for _, tc := range []struct {
		name                                     string
		n, conc, zones, zonesInFlight, wantWaves int
	}{
		{"no zones", 12, 3, 0, 0, 4},
		{"zones not limited", 12, 3, 3, 0, 4},
		{"one zone of two nodes at a time, concurrency 6", 6, 6, 3, 1, 3},
		{"one zone of four at a time, concurrency 3", 12, 3, 3, 1, 6},
		{"two of four zones at a time", 12, 4, 4, 2, 4},
		{"as many zones allowed as there are", 6, 2, 3, 3, 3},
		{"fewer nodes than zones", 2, 2, 3, 1, 2},
		{"none started", 0, 3, 3, 1, 0},
	} {
		o := Options{MaxConcurrent: tc.conc, Zones: tc.zones, ZonesInFlight: tc.zonesInFlight}
		if got := waves(tc.n, o); got != tc.wantWaves {
			t.Errorf("%s: waves(%d) = %d, want %d", tc.name, tc.n, got, tc.wantWaves)
		}
	}
}
