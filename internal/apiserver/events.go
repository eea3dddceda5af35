package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
)

// ReportingController is the reportingController of the Events the server records.
const ReportingController = "brupop.bottlerocket.aws/apiserver"

// Reasons of the Events the server records on a Node, for the people who watch it.
const (
	// EventCordoned: Brupop cordoned the Node for an update.
	EventCordoned = "Cordoned"
	// EventDrainStarted: the pods of the Node are being evicted.
	EventDrainStarted = "DrainStarted"
	// EventDrained: every pod to evict is gone.
	EventDrained = "Drained"
	// EventDrainFailed (Warning): the cordon or the drain failed, such as at its deadline with
	// pods a PodDisruptionBudget kept on the Node; the note names them.
	EventDrainFailed = "DrainFailed"
	// EventUncordoned: Brupop made the Node schedulable again.
	EventUncordoned = "Uncordoned"
)

// maxNote bounds an Event's note, which the API limits to 1 kB.
const maxNote = 1000

// nodeEvents records Events on Nodes through events.k8s.io/v1; its zero value records nothing.
type nodeEvents struct {
	recorder events.EventRecorder
}

// startNodeEvents starts a broadcaster writing Events with kube until ctx ends; stop flushes
// what it can and stops it.
func startNodeEvents(ctx context.Context, kube kubernetes.Interface) (nodeEvents, func(), error) {
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: kube.EventsV1()})
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		return nodeEvents{}, nil, fmt.Errorf("apiserver: start recording events: %w", err)
	}
	return nodeEvents{recorder: b.NewRecorder(clientgoscheme.Scheme, ReportingController)}, b.Shutdown, nil
}

// record records an Event of type typ (corev1.EventTypeNormal or Warning) on the Node.
func (e nodeEvents) record(node, uid, typ, reason, action, note string) {
	if e.recorder == nil {
		return
	}
	if len(note) > maxNote {
		note = note[:maxNote-3] + "..."
	}
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node, UID: types.UID(uid)}
	e.recorder.Eventf(ref, nil, typ, reason, action, "%s", note)
}
