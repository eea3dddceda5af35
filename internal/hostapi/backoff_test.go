package hostapi

import (
	"testing"
	"time"
)

// TestBackoffSpreadsUnderTheCap checks the retry policy's promise: attempt n waits between half
// and all of min(RetryBase*2^n, RetryMax), however many attempts.
func TestBackoffSpreadsUnderTheCap(t *testing.T) {
	o := Options{RetryBase: time.Second, RetryMax: 30 * time.Second}
	b := o.backoff()
	for n := range 1000 {
		full := min(o.RetryBase<<min(n, 20), o.RetryMax)
		if got := b.Step(); got < full/2 || got > full {
			t.Fatalf("attempt %d waits %s, want within [%s, %s]", n, got, full/2, full)
		}
	}
}
