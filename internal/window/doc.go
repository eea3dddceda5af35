// Package window decides when new updates may start: it evaluates upstream Brupop's
// SCHEDULER_CRON_EXPRESSION (and the deprecated UPDATE_WINDOW_START/STOP) in an IANA time zone.
//
// Upstream parses the expression with the Rust cron crate 0.12; this package keeps that dialect and
// evaluates it with github.com/adhocore/gronx, translating the few places where the two differ:
//
//   - Fields are always "sec min hour day-of-month month day-of-week [year]". gronx would read a
//     6-field expression whose last field looks like a year as having no seconds; the year is
//     therefore always made explicit ("*") before gronx sees the expression.
//   - Day-of-week counts Sun=1 … Sat=7 as in the cron crate (gronx: Sun=0 … Sat=6, 7=Sun), so
//     "* * * * * 2" is Monday. Numbers are shifted down by one; 0 is rejected.
//   - Names may be three letters or in full ("Mon", "Monday", "Tues", "Thurs", "Jan", "January"),
//     any case, as the cron crate accepts; they are replaced by numbers.
//   - When both day-of-month and day-of-week are restricted, the cron crate requires both to
//     match; gronx (like Vixie cron) requires either. Such expressions are evaluated as two gronx
//     expressions that must both match.
//   - gronx's extensions (L, W, #, @daily tags, 5-field expressions) are not upstream's dialect and
//     are rejected, so an expression means the same thing in both implementations.
//
// A schedule is Windowed or Oneshot, as upstream decides with "are the next two fire times exactly
// one second apart". This package answers that question without a clock: a schedule is Windowed
// when its seconds field matches two consecutive seconds of a minute (for example "*" or "0-59"),
// which agrees with upstream for every start time except upstream's own edge cases (starting on
// the last second of a window). A Windowed schedule lets updates start while the current second
// matches; a Oneshot schedule fires triggers, and after each trigger the controller keeps starting
// nodes until a pass finds none left to start (see Schedule.Admits).
package window
