package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestLevel(t *testing.T) {
	for name, tc := range map[string]struct {
		filter  string
		want    slog.Level
		wantErr bool
	}{
		"default info":          {filter: "info", want: slog.LevelInfo},
		"empty means info":      {filter: "", want: slog.LevelInfo},
		"most verbose target":   {filter: "info,agent=debug,kube=warn", want: slog.LevelDebug},
		"trace below debug":     {filter: "trace", want: slog.LevelDebug - 4},
		"case insensitive":      {filter: "WARN", want: slog.LevelWarn},
		"off silences":          {filter: "off", want: slog.LevelError + 100},
		"garbage is refused":    {filter: "loud", wantErr: true},
		"bad target is refused": {filter: "agent=chatty", wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Options{Format: "json", Filter: tc.filter}.Level()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("level = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvFormatter, "json")
	t.Setenv(EnvFilter, "debug")
	t.Setenv(EnvANSI, "true")
	o, err := FromEnv()
	if err != nil || o != (Options{Format: "json", Filter: "debug", ANSI: true}) {
		t.Fatalf("FromEnv = %+v, %v", o, err)
	}
	t.Setenv(EnvANSI, "yes please")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), EnvANSI) {
		t.Errorf("bad %s: err = %v, want one naming the variable", EnvANSI, err)
	}
	t.Setenv(EnvANSI, "false")
	t.Setenv(EnvFormatter, "fancy")
	if _, err := FromEnv(); err == nil || !strings.Contains(err.Error(), EnvFormatter) {
		t.Errorf("bad %s: err = %v, want one naming the variable", EnvFormatter, err)
	}
}

func TestNewWritesJSONAtTheLevel(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, Options{Format: "json", Filter: "info"})
	if err != nil {
		t.Fatal(err)
	}
	log.V(1).Info("hidden")
	log.Info("Cordoned Node", "node", "node-1")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	if line["msg"] != "Cordoned Node" || line["node"] != "node-1" {
		t.Errorf("line = %v", line)
	}
}

func TestANSIColoursOnlyTheTextFormats(t *testing.T) {
	const esc = "\x1b["
	for _, tc := range []struct {
		format     string
		ansi, want bool
	}{
		{"pretty", true, true},
		{"compact", true, true},
		{"pretty", false, false},
		{"json", true, false},
	} {
		var buf bytes.Buffer
		log, err := New(&buf, Options{Format: tc.format, Filter: "info", ANSI: tc.ansi})
		if err != nil {
			t.Fatal(err)
		}
		log.Error(errors.New("boom"), "Drain failed", "node", "node-1")
		out := buf.String()
		if got := strings.Contains(out, esc); got != tc.want {
			t.Errorf("format %s, ANSI %v: coloured = %v, want %v: %q", tc.format, tc.ansi, got, tc.want, out)
		}
		if !strings.Contains(out, "Drain failed") || !strings.Contains(out, "node-1") || !strings.Contains(out, "boom") {
			t.Errorf("format %s, ANSI %v: %q lacks the message, the node or the error", tc.format, tc.ansi, out)
		}
	}
}
