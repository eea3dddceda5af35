// Package logging builds the logr.Logger every Brupop binary logs through, backed by log/slog,
// from upstream's logging settings: LOGGING_FORMATTER (full, compact, pretty or json),
// TRACING_FILTER_DIRECTIVE (a tracing-subscriber EnvFilter such as "info" or "agent=debug,kube=warn")
// and LOGGING_ANSI_ENABLED.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/lmittmann/tint"
)

// Environment variables upstream Brupop reads, kept by name.
const (
	EnvFormatter = "LOGGING_FORMATTER"
	EnvFilter    = "TRACING_FILTER_DIRECTIVE"
	EnvANSI      = "LOGGING_ANSI_ENABLED"
)

// Options are upstream's logging settings.
type Options struct {
	// Format is full, compact, pretty (text; full adds the source line) or json.
	Format string
	// Filter is a tracing directive; its most verbose level is used, as slog has no per-target
	// levels.
	Filter string
	// ANSI colours the text formats (levels, keys, errors); json is never coloured.
	ANSI bool
}

// Defaults returns upstream's defaults: pretty, info, no colours.
func Defaults() Options { return Options{Format: "pretty", Filter: "info"} }

// FromEnv returns Defaults overridden by the environment. A bad value is an error that names the
// variable and what to set.
func FromEnv() (Options, error) { return FromGetenv(os.Getenv) }

// FromGetenv is FromEnv reading the environment through getenv; an empty variable is unset.
func FromGetenv(getenv func(string) string) (Options, error) {
	o := Defaults()
	if v := getenv(EnvFormatter); v != "" {
		o.Format = v
	}
	if v := getenv(EnvFilter); v != "" {
		o.Filter = v
	}
	if v := getenv(EnvANSI); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return o, fmt.Errorf("%s=%q: set true or false", EnvANSI, v)
		}
		o.ANSI = b
	}
	return o, o.Validate()
}

// Validate says what to fix in o.
func (o Options) Validate() error {
	switch o.Format {
	case "full", "compact", "pretty", "json":
	default:
		return fmt.Errorf("log format %q: set %s to full, compact, pretty or json", o.Format, EnvFormatter)
	}
	_, err := o.Level()
	return err
}

// Level maps the filter to the most verbose slog level it names, so "info,agent=debug" logs
// debug lines. "off" silences everything.
func (o Options) Level() (slog.Level, error) {
	levels := map[string]slog.Level{
		"trace": slog.LevelDebug - 4, "debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "error": slog.LevelError, "off": slog.LevelError + 100,
	}
	level, found := slog.LevelError+100, false
	for _, part := range strings.Split(o.Filter, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, l, ok := strings.Cut(part, "="); ok {
			part = l
		}
		l, ok := levels[strings.ToLower(part)]
		if !ok {
			return 0, fmt.Errorf("log filter %q: %q is not a level; set %s to error, warn, info, debug or trace (optionally per target, e.g. info,agent=debug)", o.Filter, part, EnvFilter)
		}
		if !found || l < level {
			level, found = l, true
		}
	}
	if !found {
		return slog.LevelInfo, nil
	}
	return level, nil
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) (logr.Logger, error) {
	level, err := o.Level()
	if err != nil {
		return logr.Discard(), err
	}
	hopts := &slog.HandlerOptions{Level: level, AddSource: o.Format == "full"}
	var h slog.Handler
	switch {
	case o.Format == "json":
		h = slog.NewJSONHandler(w, hopts)
	case o.ANSI:
		// slog's text handler has no colours; tint is its coloured twin.
		h = tint.NewTextHandler(w, &tint.Options{Level: level, AddSource: hopts.AddSource, TimeFormat: time.RFC3339Nano})
	default:
		h = slog.NewTextHandler(w, hopts)
	}
	return logr.FromSlogHandler(h), nil
}
