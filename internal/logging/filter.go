package logging

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode"
)

// levelTrace and levelOff extend slog's levels with tracing's trace and off.
const (
	levelTrace = slog.LevelDebug - 4
	levelOff   = slog.LevelError + 100
)

// ParseFilter reads a TRACING_FILTER_DIRECTIVE the way upstream's tracing-subscriber EnvFilter
// does (docs/install.md, "Lenient settings"): it never fails. The value is a comma-separated list of
// directives, each a level (trace, debug, info, warn, error or off in any case, or 0-5 for off to
// trace), or a target optionally followed by a span filter and a level: target, target=level,
// target[span{field=value}]=level, [span]=level. A target without a level, or with an empty
// one, means trace. A directive that does not parse is ignored.
//
// slog has no per-target or per-span levels, so the level returned is the most verbose one of
// the directives, and info (upstream's default) when none parses. Each ignored directive, and each
// span filter whose level is applied to every line instead, is a Warning.
func ParseFilter(filter string) (slog.Level, []Warning) {
	var (
		level    slog.Level
		found    bool
		warnings []Warning
		invalid  []string
	)
	for _, part := range strings.Split(filter, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		l, span, ok := parseDirective(part)
		if !ok {
			invalid = append(invalid, part)
			continue
		}
		if span != "" {
			warnings = append(warnings, Warning{Setting: EnvFilter, Value: filter, Ignored: span,
				Reason: fmt.Sprintf("span filters are not supported; %s applies to every line", levelName(l))})
		}
		if !found || l < level {
			level, found = l, true
		}
	}
	reason := "not a directive (a level, target, target=level or target[span{field=value}]=level)"
	if !found {
		level = slog.LevelInfo
		reason += "; no directive is left, so info applies"
	}
	for _, part := range invalid {
		warnings = append(warnings, Warning{Setting: EnvFilter, Value: filter, Ignored: part, Reason: reason})
	}
	return level, warnings
}

// parseDirective parses one directive: its level, and its span filter ("[...]") if it has one.
func parseDirective(s string) (level slog.Level, span string, ok bool) {
	if l, ok := parseLevel(s); ok {
		return l, "", true
	}
	rest, parts := s, 0
	for parts < 2 && rest != "" {
		if rest[0] == '[' {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return 0, "", false
			}
			span, rest = rest[:end+1], rest[end+1:]
		} else {
			n := targetLen(rest)
			if n == 0 {
				break
			}
			rest = rest[n:]
		}
		parts++
	}
	if parts == 0 {
		return 0, "", false
	}
	if rest == "" || rest == "=" {
		return levelTrace, span, true // a target without a level enables every level
	}
	if rest[0] != '=' {
		return 0, "", false
	}
	if l, ok := parseLevel(rest[1:]); ok {
		return l, span, true
	}
	return 0, "", false
}

// targetLen is the length of the target name s starts with: word characters and colons.
func targetLen(s string) int {
	for i, r := range s {
		if r != ':' && r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r) && !unicode.Is(unicode.Pc, r) {
			return i
		}
	}
	return len(s)
}

// parseLevel parses a level name in any case, or its number (0 off to 5 trace).
func parseLevel(s string) (slog.Level, bool) {
	switch strings.ToLower(s) {
	case "trace", "5":
		return levelTrace, true
	case "debug", "4":
		return slog.LevelDebug, true
	case "info", "3":
		return slog.LevelInfo, true
	case "warn", "2":
		return slog.LevelWarn, true
	case "error", "1":
		return slog.LevelError, true
	case "off", "0":
		return levelOff, true
	}
	return 0, false
}

// levelName is the tracing name of a level parseLevel returns.
func levelName(l slog.Level) string {
	switch l {
	case levelTrace:
		return "trace"
	case levelOff:
		return "off"
	}
	return strings.ToLower(l.String())
}
