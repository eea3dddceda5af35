// Package logging builds the logr.Logger every Brupop binary logs through, backed by log/slog,
// from upstream's logging settings: LOGGING_FORMATTER (full, compact, pretty or json),
// TRACING_FILTER_DIRECTIVE (a tracing-subscriber EnvFilter such as "info" or "agent=debug,kube=warn",
// parsed as leniently as upstream: see ParseFilter) and LOGGING_ANSI_ENABLED.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
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
	// Filter is a tracing-subscriber EnvFilter directive list. It never fails, as upstream's
	// lossy parser: its most verbose level is used, as slog has no per-target levels, and what
	// maps to no level is ignored with a Warning (see ParseFilter).
	Filter string
	// ANSI colours the text formats (levels, keys, errors); json is never coloured.
	ANSI bool
}

// Defaults returns upstream's defaults: pretty, info, no colours.
func Defaults() Options { return Options{Format: "pretty", Filter: "info"} }

// FromEnv returns Defaults overridden by the environment. A bad format or ANSI value is an error
// that names the variable and what to set, as upstream; the filter never is.
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

// Validate says what to fix in o. Only the format can be wrong: the filter is lenient.
func (o Options) Validate() error {
	switch o.Format {
	case "full", "compact", "pretty", "json":
		return nil
	}
	return fmt.Errorf("log format %q: set %s to full, compact, pretty or json", o.Format, EnvFormatter)
}

// Level is the slog level of the filter (see ParseFilter).
func (o Options) Level() slog.Level {
	level, _ := ParseFilter(o.Filter)
	return level
}

// Warnings lists what of the filter is ignored (see ParseFilter); New logs them.
func (o Options) Warnings() []Warning {
	_, warnings := ParseFilter(o.Filter)
	return warnings
}

// Warning is a setting, or a part of one, that a binary ignores at start-up instead of
// failing, as upstream does. New logs each on one line, whatever the level.
type Warning struct {
	// Setting is the environment variable, such as TRACING_FILTER_DIRECTIVE.
	Setting string
	// Value is the setting's whole value.
	Value string
	// Ignored is the part of Value that is ignored (Value itself when all of it is).
	Ignored string
	// Reason says why, and what applies instead.
	Reason string
}

// New returns a logger writing to w, and logs on it, at warn level whatever o's level, each
// warning of o's filter and then each of warnings (those of the binary's other settings), one
// line each.
func New(w io.Writer, o Options, warnings ...Warning) (logr.Logger, error) {
	if err := o.Validate(); err != nil {
		return logr.Discard(), err
	}
	level := o.Level()
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
	for _, warning := range append(o.Warnings(), warnings...) {
		// Handle, not the logger: a warning about the filter must not be hidden by it.
		r := slog.NewRecord(time.Now(), slog.LevelWarn, "Ignoring a setting", 0)
		r.AddAttrs(slog.String("setting", warning.Setting), slog.String("value", warning.Value),
			slog.String("ignored", warning.Ignored), slog.String("reason", warning.Reason))
		_ = h.Handle(context.Background(), r) // a failed write has nowhere else to go
	}
	if level >= levelOff {
		return logr.Discard(), nil // logr writes errors at every level; off means nothing
	}
	return logr.FromSlogHandler(h), nil
}
