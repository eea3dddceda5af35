package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
)

// logOptions are upstream's logging settings.
type logOptions struct {
	format string // full | compact | pretty | json
	level  string // a level, or a tracing directive whose bare level is used
	ansi   bool   // accepted for compatibility; slog's text output has no colours
}

func logOptionsFromEnv(errs []error) (logOptions, []error) {
	o := logOptions{format: "pretty", level: "info"}
	if v, ok := os.LookupEnv("LOGGING_FORMATTER"); ok {
		o.format = v
	}
	if v, ok := os.LookupEnv("TRACING_FILTER_DIRECTIVE"); ok {
		o.level = v
	}
	if v, ok := os.LookupEnv("LOGGING_ANSI_ENABLED"); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("LOGGING_ANSI_ENABLED %q: set true or false", v))
		}
		o.ansi = b
	}
	return o, errs
}

func (o logOptions) validate() error {
	switch o.format {
	case "full", "compact", "pretty", "json":
	default:
		return fmt.Errorf("log format %q: set LOGGING_FORMATTER or --log-format to full, compact, pretty or json", o.format)
	}
	if _, err := o.slogLevel(); err != nil {
		return err
	}
	return nil
}

// slogLevel maps a tracing directive such as "info" or "debug,kube=warn" to a slog level; the
// per-target parts are ignored.
func (o logOptions) slogLevel() (slog.Level, error) {
	level := "info"
	for _, part := range strings.Split(o.level, ",") {
		if part = strings.TrimSpace(part); part != "" && !strings.Contains(part, "=") {
			level = part
		}
	}
	switch strings.ToLower(level) {
	case "trace":
		return slog.LevelDebug - 4, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("log level %q: set TRACING_FILTER_DIRECTIVE or --log-level to error, warn, info, debug or trace", level)
}

// logger builds the logr.Logger every part of the server logs through.
func (o logOptions) logger(w io.Writer) (logr.Logger, error) {
	level, err := o.slogLevel()
	if err != nil {
		return logr.Discard(), err
	}
	hopts := &slog.HandlerOptions{Level: level, AddSource: o.format == "full"}
	var h slog.Handler = slog.NewTextHandler(w, hopts)
	if o.format == "json" {
		h = slog.NewJSONHandler(w, hopts)
	}
	return logr.FromSlogHandler(h), nil
}
