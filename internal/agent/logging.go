package agent

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/go-logr/logr"
)

// ParseLevel turns a tracing filter directive (TRACING_FILTER_DIRECTIVE, e.g. "info" or
// "agent=debug,hyper=warn") into the most verbose slog level it names.
func ParseLevel(directive string) (slog.Level, error) {
	levels := map[string]slog.Level{
		"trace": slog.LevelDebug - 4, "debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "error": slog.LevelError,
	}
	found := false
	lvl := slog.LevelError
	for part := range strings.SplitSeq(directive, ",") {
		part = strings.TrimSpace(part)
		if i := strings.LastIndex(part, "="); i >= 0 {
			part = part[i+1:]
		}
		l, ok := levels[strings.ToLower(part)]
		if !ok {
			return 0, fmt.Errorf("log level %q in %q is not trace, debug, info, warn or error", part, directive)
		}
		found = true
		lvl = min(lvl, l)
	}
	if !found {
		return 0, fmt.Errorf("log level directive %q names no level", directive)
	}
	return lvl, nil
}

// NewLogger returns a logr.Logger backed by log/slog writing to w: JSON for format "json", text
// for the others. The level must come from ParseLevel.
func NewLogger(w io.Writer, format string, level slog.Level) logr.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return logr.FromSlogHandler(h)
}
