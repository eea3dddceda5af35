package apiserver

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
)

func TestNodeEventsKeepNotesShort(t *testing.T) {
	rec := events.NewFakeRecorder(2)
	e := nodeEvents{recorder: rec}
	e.record("node-a", "uid-a", corev1.EventTypeWarning, EventDrainFailed, "Drain", "blocked: "+strings.Repeat("ns/pod-x ", 200)+"%d")
	got := <-rec.Events
	note := strings.TrimPrefix(got, corev1.EventTypeWarning+" "+EventDrainFailed+" ")
	if len(note) > maxNote || !strings.HasPrefix(note, "blocked: ns/pod-x") || !strings.HasSuffix(note, "...") {
		t.Errorf("note of %d bytes %q, want at most %d, cut with ...", len(note), note, maxNote)
	}
	nodeEvents{}.record("node-a", "uid-a", corev1.EventTypeNormal, EventDrained, "Drain", "no recorder, no panic")
}
