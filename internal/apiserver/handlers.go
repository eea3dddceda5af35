package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// handlers serve the endpoints; one per Serve, whose Events they record.
type handlers struct {
	*Server
	events nodeEvents
}

// agentHandler serves a request of an authorized agent.
type agentHandler func(w http.ResponseWriter, r *http.Request, c Caller, log logr.Logger)

// agent authenticates and authorizes the request before calling next.
func (h *handlers) agent(next agentHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		node, uid := r.Header.Get(agentapi.HeaderNodeName), r.Header.Get(agentapi.HeaderNodeUID)
		log := h.log.WithValues("path", r.URL.Path, "node", node, "remote", r.RemoteAddr)
		token := strings.TrimSpace(r.Header.Get(agentapi.HeaderToken))
		if token == "" {
			h.refuse(w, log, http.StatusUnauthorized, "missing "+agentapi.HeaderToken+" header")
			return
		}
		if node == "" || uid == "" {
			h.refuse(w, log, http.StatusBadRequest, "missing "+agentapi.HeaderNodeName+" or "+agentapi.HeaderNodeUID+" header")
			return
		}
		rev, err := h.reviewer.Review(r.Context(), token)
		if err != nil {
			log.Error(err, "Token review failed")
			h.refuse(w, log, http.StatusInternalServerError, "token review failed, retry later")
			return
		}
		c, refusal, err := Authorize(r.Context(), rev, h.opts.Namespace, node, uid, h.pods)
		if err != nil {
			log.Error(err, "Looking up the token's pod failed")
			h.refuse(w, log, http.StatusInternalServerError, "looking up the token's pod failed, retry later")
			return
		}
		if refusal != nil {
			h.refuse(w, log, refusal.Code, refusal.Reason)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
		next(w, r, c, log.WithValues("pod", c.PodName))
	}
}

// refuse answers code with a one-line reason and logs it.
func (h *handlers) refuse(w http.ResponseWriter, log logr.Logger, code int, reason string) {
	log.Info("Refused request", "code", code, "reason", reason)
	h.reply(w, code, reason)
}

// reply answers code with a one-line text.
func (h *handlers) reply(w http.ResponseWriter, code int, reason string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, strings.ReplaceAll(reason, "\n", " ")+"\n")
}

// decode reads a JSON body into v, answering 413 or 400 itself when it cannot.
func (h *handlers) decode(w http.ResponseWriter, r *http.Request, log logr.Logger, v any, allowEmpty bool) bool {
	raw, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		h.refuse(w, log, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
		return false
	case err != nil:
		h.refuse(w, log, http.StatusBadRequest, "read body: "+err.Error())
		return false
	case len(strings.TrimSpace(string(raw))) == 0 && allowEmpty:
		return true
	}
	if err := json.Unmarshal(raw, v); err != nil {
		h.refuse(w, log, http.StatusBadRequest, "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// createShadow creates the caller's shadow, owned by its Node, or returns the existing one.
func (h *handlers) createShadow(w http.ResponseWriter, r *http.Request, c Caller, log logr.Logger) {
	var req agentapi.CreateShadowRequest
	if !h.decode(w, r, log, &req, true) {
		return
	}
	if sel := req.NodeSelector; (sel.NodeName != "" && sel.NodeName != c.NodeName) || (sel.NodeUID != "" && sel.NodeUID != c.NodeUID) {
		h.refuse(w, log, http.StatusForbidden, fmt.Sprintf("body names node %s/%s, caller is node %s/%s", sel.NodeName, sel.NodeUID, c.NodeName, c.NodeUID))
		return
	}
	node, err := h.kube.CoreV1().Nodes().Get(r.Context(), c.NodeName, metav1.GetOptions{})
	if err != nil {
		h.apiError(w, log, "read node", err)
		return
	}
	if string(node.UID) != c.NodeUID {
		h.refuse(w, log, http.StatusForbidden, fmt.Sprintf("node %s now has UID %s, token names %s", c.NodeName, node.UID, c.NodeUID))
		return
	}
	brs := &v2.BottlerocketShadow{
		TypeMeta: metav1.TypeMeta{APIVersion: v2.GroupVersion.String(), Kind: "BottlerocketShadow"},
		ObjectMeta: metav1.ObjectMeta{
			Name: v2.ShadowName(c.NodeName), Namespace: h.opts.Namespace,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
		},
		Spec: v2.BottlerocketShadowSpec{State: v2.StateIdle},
	}
	err = h.shadows.Create(r.Context(), brs)
	if apierrors.IsAlreadyExists(err) {
		err = h.shadows.Get(r.Context(), client.ObjectKeyFromObject(brs), brs)
	} else if err == nil {
		log.Info("Created shadow", "shadow", brs.Name)
	}
	if err != nil {
		h.apiError(w, log, "create shadow", err)
		return
	}
	brs.APIVersion, brs.Kind = v2.GroupVersion.String(), "BottlerocketShadow"
	writeJSON(w, brs)
}

var semver = regexp.MustCompile(v2.SemverPattern)

// validateStatus checks what kube-apiserver would refuse, so that the agent gets a 400.
func validateStatus(s *v2.BottlerocketShadowStatus) error {
	var errs []error
	for _, v := range []struct{ field, value string }{{"current_version", s.CurrentVersion}, {"target_version", s.TargetVersion}} {
		if !semver.MatchString(v.value) {
			errs = append(errs, fmt.Errorf("%s %q is not a semantic version", v.field, v.value))
		}
	}
	known := false
	for _, st := range v2.States {
		known = known || st == s.CurrentState
	}
	if !known {
		errs = append(errs, fmt.Errorf("current_state %q is not one of %v", s.CurrentState, v2.States))
	}
	return errors.Join(errs...)
}

// updateStatus merge-patches the status of the caller's shadow and echoes it.
func (h *handlers) updateStatus(w http.ResponseWriter, r *http.Request, c Caller, log logr.Logger) {
	var status v2.BottlerocketShadowStatus
	if !h.decode(w, r, log, &status, false) {
		return
	}
	if err := validateStatus(&status); err != nil {
		h.refuse(w, log, http.StatusBadRequest, "invalid status: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	patch, err := statusPatch(&status)
	if err != nil {
		h.apiError(w, log, "encode status", err)
		return
	}
	brs := &v2.BottlerocketShadow{ObjectMeta: metav1.ObjectMeta{Name: v2.ShadowName(c.NodeName), Namespace: h.opts.Namespace}}
	if err := h.shadows.Status().Patch(r.Context(), brs, client.RawPatch(types.MergePatchType, patch)); err != nil {
		h.apiError(w, log, "update shadow status", err)
		return
	}
	log.V(1).Info("Updated shadow status", "shadow", brs.Name, "state", status.CurrentState, "version", status.CurrentVersion)
	writeJSON(w, &status)
}

// uncordon undoes Brupop's cordon and removes the cordon time. A drain round still running for
// the node, on any replica, sees the node schedulable and stops.
func (h *handlers) uncordon(w http.ResponseWriter, r *http.Request, c Caller, log logr.Logger) {
	done, err := h.nodes.Uncordon(r.Context(), c.NodeName)
	if err != nil {
		h.apiError(w, log, "uncordon", err)
		return
	}
	if done {
		log.Info("Uncordoned Node")
		h.events.record(c.NodeName, c.NodeUID, corev1.EventTypeNormal, EventUncordoned, "Uncordon", "Made Node schedulable again after a Bottlerocket update")
	} else {
		log.Info("Left Node as it was: Brupop had not cordoned it")
	}
	w.WriteHeader(http.StatusOK)
}

func (h *handlers) excludeFromLB(w http.ResponseWriter, r *http.Request, c Caller, log logr.Logger) {
	h.nodeChange(w, log, "Excluded Node from load balancers", h.nodes.ExcludeFromLB(r.Context(), c.NodeName))
}

func (h *handlers) removeExclusionFromLB(w http.ResponseWriter, r *http.Request, c Caller, log logr.Logger) {
	h.nodeChange(w, log, "Removed exclusion of Node from load balancers", h.nodes.RemoveExclusionFromLB(r.Context(), c.NodeName))
}

func (h *handlers) nodeChange(w http.ResponseWriter, log logr.Logger, msg string, err error) {
	if err != nil {
		h.apiError(w, log, "change node", err)
		return
	}
	log.Info(msg)
	w.WriteHeader(http.StatusOK)
}

// apiError answers a failed call to kube-apiserver: its 404 and 403 pass through, the rest is
// a 500.
func (h *handlers) apiError(w http.ResponseWriter, log logr.Logger, what string, err error) {
	code := http.StatusInternalServerError
	switch {
	case apierrors.IsNotFound(err):
		code = http.StatusNotFound
	case apierrors.IsInvalid(err):
		code = http.StatusBadRequest
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	log.Error(err, "Request failed", "step", what)
	h.refuse(w, log, code, what+": "+err.Error())
}

// convert answers a ConversionReview; it needs no agent token, and always answers 200 with a
// review whose result says whether it worked.
func (h *handlers) convert(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxConvertBytes)
	var in apiextensionsv1.ConversionReview
	raw, err := io.ReadAll(r.Body)
	if err == nil {
		err = json.Unmarshal(raw, &in)
	}
	var out *apiextensionsv1.ConversionReview
	if err != nil {
		out = &apiextensionsv1.ConversionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: apiextensionsv1.SchemeGroupVersion.String(), Kind: "ConversionReview"},
			Response: &apiextensionsv1.ConversionResponse{Result: failed(fmt.Errorf("read ConversionReview: %w", err))},
		}
	} else {
		out = ConvertReview(&in)
	}
	if out.Response.Result.Status != metav1.StatusSuccess {
		h.log.Info("Conversion failed", "reason", out.Response.Result.Message)
	}
	writeJSON(w, out)
}

// statusPatch is the merge patch that replaces a shadow's status with status. Fields that are
// empty are sent as explicit nulls, as upstream sends them: a merge patch keeps what it omits, so
// a finished update could otherwise never clear the last failure's timestamp and reason.
func statusPatch(status *v2.BottlerocketShadowStatus) ([]byte, error) {
	raw, err := json.Marshal(status)
	if err != nil {
		return nil, err
	}
	fields := map[string]any{}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, err
	}
	for _, k := range []string{"state_transition_failure_timestamp", "failure_reason", "conditions"} {
		if _, ok := fields[k]; !ok {
			fields[k] = nil
		}
	}
	return json.Marshal(map[string]any{
		"apiVersion": v2.GroupVersion.String(), "kind": "BottlerocketShadow", "status": fields,
	})
}
