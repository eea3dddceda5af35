package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	for _, tc := range []struct {
		filter  string
		want    slog.Level
		ignored []string // the Ignored part of each warning, in order
	}{
		{filter: "info", want: slog.LevelInfo},
		{filter: "", want: slog.LevelInfo},
		{filter: "info,agent=debug,kube=warn", want: slog.LevelDebug},
		{filter: "trace", want: levelTrace},
		{filter: "WARN", want: slog.LevelWarn},
		{filter: "Debug", want: slog.LevelDebug},
		{filter: "off", want: levelOff},
		{filter: "2", want: slog.LevelWarn},
		{filter: "agent", want: levelTrace},
		{filter: "agent=", want: levelTrace},
		{filter: "agent::pass=ERROR", want: slog.LevelError},
		{filter: " info , ,agent=warn", want: slog.LevelInfo},
		{filter: "agent[request{node=x}]=debug", want: slog.LevelDebug, ignored: []string{"[request{node=x}]"}},
		{filter: "warn,[drain]=info", want: slog.LevelInfo, ignored: []string{"[drain]"}},
		{filter: "garbage!!", want: slog.LevelInfo, ignored: []string{"garbage!!"}},
		{filter: "a=b=c", want: slog.LevelInfo, ignored: []string{"a=b=c"}},
		{filter: "loud", want: levelTrace}, // a target named loud, as upstream reads it
		{filter: "agent=chatty,error", want: slog.LevelError, ignored: []string{"agent=chatty"}},
		{filter: "=debug", want: slog.LevelInfo, ignored: []string{"=debug"}},
		{filter: "my-crate=debug", want: slog.LevelInfo, ignored: []string{"my-crate=debug"}},
		{filter: "agent[unclosed=debug", want: slog.LevelInfo, ignored: []string{"agent[unclosed=debug"}},
		// Upstream splits on commas first, so a span with two fields is two broken directives.
		{filter: "info,agent[r{a=1,b=2}]=debug", want: slog.LevelInfo, ignored: []string{"agent[r{a=1", "b=2}]=debug"}},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			got, warnings := ParseFilter(tc.filter)
			if got != tc.want {
				t.Errorf("level = %v, want %v", got, tc.want)
			}
			var ignored []string
			for _, w := range warnings {
				ignored = append(ignored, w.Ignored)
				if w.Setting != EnvFilter || w.Value != tc.filter || w.Reason == "" {
					t.Errorf("warning %+v: want setting %s, value %q and a reason", w, EnvFilter, tc.filter)
				}
			}
			if strings.Join(ignored, " ") != strings.Join(tc.ignored, " ") {
				t.Errorf("ignored %q, want %q", ignored, tc.ignored)
			}
			o := Options{Format: "json", Filter: tc.filter}
			if err := o.Validate(); err != nil || o.Level() != got || len(o.Warnings()) != len(warnings) {
				t.Errorf("Options: Validate %v, Level %v, %d warnings", err, o.Level(), len(o.Warnings()))
			}
		})
	}
}

func TestNewLogsWarningsWhateverTheLevel(t *testing.T) {
	var buf bytes.Buffer
	extra := Warning{Setting: "EXCLUDE_FROM_LB_WAIT_TIME_IN_SEC", Value: "abc", Ignored: "abc", Reason: "off"}
	log, err := New(&buf, Options{Format: "json", Filter: "off,garbage!!"}, extra)
	if err != nil {
		t.Fatal(err)
	}
	log.Error(errors.New("boom"), "hidden by off")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 warning lines, got %q", buf.String())
	}
	for i, want := range []Warning{{Setting: EnvFilter, Value: "off,garbage!!", Ignored: "garbage!!"}, extra} {
		var line map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &line); err != nil {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
		if line["level"] != "WARN" || line["setting"] != want.Setting || line["value"] != want.Value || line["ignored"] != want.Ignored || line["reason"] == "" {
			t.Errorf("line %d = %v, want a warning about %+v", i, line, want)
		}
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
