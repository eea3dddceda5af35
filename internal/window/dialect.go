package window

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/adhocore/gronx"
)

// The positions of the fields of upstream's dialect.
const (
	fieldSecond = iota
	fieldMinute
	fieldHour
	fieldDayOfMonth
	fieldMonth
	fieldDayOfWeek
	fieldYear
)

var fieldNames = [...]string{"second", "minute", "hour", "day-of-month", "month", "day-of-week", "year"}

// monthNames and dayNames are the names the cron crate accepts, mapped to gronx's numbers.
var (
	monthNames = map[string]int{
		"jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4, "april": 4,
		"may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8, "august": 8,
		"sep": 9, "september": 9, "oct": 10, "october": 10, "nov": 11, "november": 11,
		"dec": 12, "december": 12,
	}
	dayNames = map[string]int{
		"sun": 0, "sunday": 0, "mon": 1, "monday": 1, "tue": 2, "tues": 2, "tuesday": 2,
		"wed": 3, "wednesday": 3, "thu": 4, "thurs": 4, "thursday": 4, "fri": 5, "friday": 5,
		"sat": 6, "saturday": 6,
	}
)

// translate turns an expression of upstream's dialect into one or two 7-field gronx expressions
// that must all match. Two are returned when both day fields are restricted, because upstream
// requires both to match and gronx would accept either.
func translate(expr string) ([]string, error) {
	fields := strings.Fields(expr)
	if len(fields) != 6 && len(fields) != 7 {
		return nil, fmt.Errorf("want 6 or 7 space-separated fields (sec min hour day-of-month month day-of-week [year]), got %d", len(fields))
	}
	if len(fields) == 6 {
		fields = append(fields, "*")
	}
	orig := append([]string(nil), fields...)
	for i, f := range fields {
		out, err := translateField(i, f)
		if err != nil {
			return nil, fmt.Errorf("%s field %q: %w", fieldNames[i], f, err)
		}
		fields[i] = out
	}
	for i, f := range fields {
		if err := validateField(i, f); err != nil {
			return nil, fmt.Errorf("%s field %q: %w", fieldNames[i], orig[i], err)
		}
	}
	dom, dow := fields[fieldDayOfMonth], fields[fieldDayOfWeek]
	if isAll(dom) || isAll(dow) {
		return []string{strings.Join(fields, " ")}, nil
	}
	domOnly := append([]string(nil), fields...)
	domOnly[fieldDayOfWeek] = "*"
	dowOnly := append([]string(nil), fields...)
	dowOnly[fieldDayOfMonth] = "*"
	return []string{strings.Join(domOnly, " "), strings.Join(dowOnly, " ")}, nil
}

func isAll(field string) bool { return field == "*" || field == "?" }

// translateField replaces names by numbers and shifts day-of-week numbers to gronx's.
func translateField(pos int, field string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(field); {
		c := rune(field[i])
		switch {
		case strings.ContainsRune("*?,-/", c):
			b.WriteRune(c)
			i++
		case unicode.IsDigit(c):
			j := i
			for j < len(field) && unicode.IsDigit(rune(field[j])) {
				j++
			}
			num := field[i:j]
			if pos == fieldDayOfWeek && (i == 0 || field[i-1] != '/') {
				n, err := strconv.Atoi(num)
				if err != nil || n < 1 || n > 7 {
					return "", fmt.Errorf("day-of-week %s out of range: upstream counts Sun=1 to Sat=7 (or use names like Mon)", num)
				}
				num = strconv.Itoa(n - 1)
			}
			b.WriteString(num)
			i = j
		case unicode.IsLetter(c):
			j := i
			for j < len(field) && unicode.IsLetter(rune(field[j])) {
				j++
			}
			n, err := lookupName(pos, field[i:j])
			if err != nil {
				return "", err
			}
			b.WriteString(strconv.Itoa(n))
			i = j
		default:
			return "", fmt.Errorf("unexpected character %q: use numbers, names, '*', '?', ',', '-' and '/'", c)
		}
	}
	return b.String(), nil
}

func lookupName(pos int, name string) (int, error) {
	var table map[string]int
	switch pos {
	case fieldMonth:
		table = monthNames
	case fieldDayOfWeek:
		table = dayNames
	default:
		return 0, fmt.Errorf("%q: names are only allowed in the month and day-of-week fields", name)
	}
	n, ok := table[strings.ToLower(name)]
	if !ok {
		return 0, fmt.Errorf("%q is not a %s name (L, W and # are not supported)", name, fieldNames[pos])
	}
	return n, nil
}

// validateField checks every comma-separated item of a translated field on its own: gronx stops
// checking a list at the first item that matches, so a whole-expression check would depend on
// the clock.
func validateField(pos int, field string) error {
	for item := range strings.SplitSeq(field, ",") {
		parts := []string{"*", "*", "*", "*", "*", "*", "*"}
		parts[pos] = item
		if item == "" || !gronx.IsValid(strings.Join(parts, " ")) {
			return fmt.Errorf("not a valid value, range (a-b) or step (a/n, a-b/n, */n) for this field")
		}
	}
	return nil
}
