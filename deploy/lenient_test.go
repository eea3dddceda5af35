package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"

	brupopv2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/deploy"
	"github.com/bottlerocket-os/brupop-go/internal/agent"
	"github.com/bottlerocket-os/brupop-go/internal/apiserver"
	"github.com/bottlerocket-os/brupop-go/internal/controller"
	"github.com/bottlerocket-os/brupop-go/internal/logging"
)

// upstreamFilters are logging filters upstream's lossy parser accepts (it never fails): the
// level each binary should log at, and the parts it should ignore with a start-up warning
// (docs/install.md, "Lenient settings").
var upstreamFilters = []struct {
	filter  string
	want    slog.Level
	ignored []string
}{
	{filter: "info", want: slog.LevelInfo},
	{filter: "", want: slog.LevelInfo},
	{filter: "WARN", want: slog.LevelWarn},
	{filter: "Error", want: slog.LevelError},
	{filter: "debug", want: slog.LevelDebug},
	{filter: "trace", want: slog.LevelDebug - 4},
	{filter: "off", want: slog.LevelError + 100},
	{filter: "3", want: slog.LevelInfo},
	{filter: "agent", want: slog.LevelDebug - 4},
	{filter: "info,controller=debug", want: slog.LevelDebug},
	{filter: "agent=trace,kube=warn", want: slog.LevelDebug - 4},
	{filter: "warn,models::node=", want: slog.LevelDebug - 4},
	{filter: "agent[request{node=x}]=debug", want: slog.LevelDebug, ignored: []string{"[request{node=x}]"}},
	{filter: "garbage!!", want: slog.LevelInfo, ignored: []string{"garbage!!"}},
	{filter: "a=b=c", want: slog.LevelInfo, ignored: []string{"a=b=c"}},
	{filter: "warn,a=b=c,kube=loud", want: slog.LevelWarn, ignored: []string{"a=b=c", "kube=loud"}},
}

// TestBinariesStartWithUpstreamLoggingFilters renders the operator chart with each filter for the
// three components, as a values file written for upstream would, and runs each binary's option
// parser and logger on the environment of its container: each starts, at the expected level,
// and logs one warning per ignored part, whatever the level.
func TestBinariesStartWithUpstreamLoggingFilters(t *testing.T) {
	for _, tc := range upstreamFilters {
		t.Run(tc.filter, func(t *testing.T) {
			filter := map[string]any{"tracing_filter": tc.filter}
			r := render(t, deploy.OperatorChart, map[string]any{"logging": map[string]any{
				"formatter": "json", "agent": filter, "apiserver": filter, "controller": filter,
			}})
			check := func(t *testing.T, o logging.Options, out *bytes.Buffer) {
				t.Helper()
				if got := o.Level(); got != tc.want {
					t.Errorf("level = %v, want %v", got, tc.want)
				}
				if got := warnedParts(t, out, logging.EnvFilter); !slices.Equal(got, tc.ignored) {
					t.Errorf("warned about %q, want %q", got, tc.ignored)
				}
			}
			t.Run("agent", func(t *testing.T) {
				o, err := agent.DefaultOptions(r.getenv(t, agentWorkload, testNode))
				if err != nil {
					t.Fatal(err)
				}
				o.Namespace = brupopv2.DefaultNamespace
				if err := o.Validate(); err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if _, err := o.Logger(&out); err != nil {
					t.Fatal(err)
				}
				check(t, o.Logging(), &out)
			})
			t.Run("apiserver", func(t *testing.T) {
				c, err := apiserver.ParseCommandLine(nil, r.getenv(t, apiserverWorkload, testNode), brupopv2.DefaultNamespace)
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				if _, err := logging.New(&out, c.Logging); err != nil {
					t.Fatal(err)
				}
				check(t, c.Logging, &out)
			})
			t.Run("controller", func(t *testing.T) {
				o, err := controller.ParseOptions(nil, r.getenv(t, controllerWorkload, testNode))
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				o.Logger(&out)
				check(t, o.Logging(), &out)
			})
		})
	}
}

// TestAgentStartsWithAnUnreadableLBWait checks that an exclude_from_lb_wait_time_in_sec upstream
// cannot parse turns load-balancer exclusion off with a start-up warning, as upstream, instead of
// stopping the agent.
func TestAgentStartsWithAnUnreadableLBWait(t *testing.T) {
	r := render(t, deploy.OperatorChart, map[string]any{"exclude_from_lb_wait_time_in_sec": "abc", "logging": map[string]any{"formatter": "json"}})
	o, err := agent.DefaultOptions(r.getenv(t, agentWorkload, testNode))
	if err != nil {
		t.Fatal(err)
	}
	o.Namespace = brupopv2.DefaultNamespace
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.ExcludeFromLBWait != 0 {
		t.Errorf("load-balancer wait = %s, want 0 (off)", o.ExcludeFromLBWait)
	}
	var out bytes.Buffer
	if _, err := o.Logger(&out); err != nil {
		t.Fatal(err)
	}
	if got := warnedParts(t, &out, agent.EnvExcludeLBWait); !slices.Equal(got, []string{"abc"}) {
		t.Errorf("warned about %q, want [abc]", got)
	}
}

// warnedParts returns the ignored parts of the warnings about setting in the JSON lines of out,
// checking that each is a warning that names the whole value.
func warnedParts(t *testing.T, out *bytes.Buffer, setting string) []string {
	t.Helper()
	var parts []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var line struct{ Level, Msg, Setting, Value, Ignored, Reason string }
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		if line.Setting != setting {
			continue
		}
		if line.Level != "WARN" || line.Value == "" || line.Reason == "" {
			t.Errorf("warning line %q: want level WARN, the value and a reason", sc.Text())
		}
		parts = append(parts, line.Ignored)
	}
	return parts
}
