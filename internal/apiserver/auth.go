package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// The user extras kube-apiserver puts into the TokenReview of a pod-bound service-account token.
const (
	extraPodName  = "authentication.kubernetes.io/pod-name"
	extraPodUID   = "authentication.kubernetes.io/pod-uid"
	extraNodeName = "authentication.kubernetes.io/node-name"
	extraNodeUID  = "authentication.kubernetes.io/node-uid"
)

// Caller is an agent that proved, with its token, which pod it is and which node that pod runs
// on.
type Caller struct {
	// NodeName and NodeUID identify the caller's node, from the token (and equal to the headers).
	NodeName, NodeUID string
	// PodName and PodUID identify the agent pod the token is bound to.
	PodName, PodUID string
}

// Review is what a TokenReview said about a token.
type Review struct {
	Authenticated bool
	Audiences     []string
	User          authenticationv1.UserInfo
	// Error is the TokenReview's status.error.
	Error string
}

// Refusal is a refused request: the HTTP code and a one-line reason for the caller and the log.
type Refusal struct {
	Code   int
	Reason string
}

func (r *Refusal) Error() string { return fmt.Sprintf("%d: %s", r.Code, r.Reason) }

// Authorize decides whether the reviewed token may act for the node the request names. The
// token must be valid for agentapi.TokenAudience (else 401), belong to the agent ServiceAccount
// of namespace, be bound to a pod, and that pod must run on the node named nodeName with UID
// nodeUID (else 403).
//
// The node comes from the token's node extras when it has them (kube-apiserver 1.30 on: no
// lookup); else pods looks the bound pod up (nil pods: such tokens are refused). err is a
// failure to find out, not a refusal.
func Authorize(ctx context.Context, rev Review, namespace, nodeName, nodeUID string, pods PodNodes) (Caller, *Refusal, error) {
	if !rev.Authenticated {
		reason := "token is not valid"
		if rev.Error != "" {
			reason += ": " + rev.Error
		}
		return Caller{}, &Refusal{http.StatusUnauthorized, reason}, nil
	}
	if !slices.Contains(rev.Audiences, agentapi.TokenAudience) {
		return Caller{}, &Refusal{http.StatusUnauthorized, "token is not for audience " + agentapi.TokenAudience}, nil
	}
	want := "system:serviceaccount:" + namespace + ":" + agentapi.AgentServiceAccount
	if rev.User.Username != want {
		return Caller{}, &Refusal{http.StatusForbidden, fmt.Sprintf("token of %s, not of %s", rev.User.Username, want)}, nil
	}
	c := Caller{
		PodName:  single(rev.User.Extra, extraPodName),
		PodUID:   single(rev.User.Extra, extraPodUID),
		NodeName: single(rev.User.Extra, extraNodeName),
		NodeUID:  single(rev.User.Extra, extraNodeUID),
	}
	if c.PodName == "" || c.PodUID == "" {
		return Caller{}, &Refusal{http.StatusForbidden, "token is not bound to a pod"}, nil
	}
	_, hasNodeName := rev.User.Extra[extraNodeName]
	_, hasNodeUID := rev.User.Extra[extraNodeUID]
	switch {
	case c.NodeName != "" && c.NodeUID != "":
		// The fast path: kube-apiserver vouches for the node.
	case hasNodeName || hasNodeUID || pods == nil:
		// Node extras that are there but not single values are not trusted to a lookup.
		return Caller{}, &Refusal{http.StatusForbidden, "token is not bound to a pod running on a node"}, nil
	default:
		name, uid, refusal, err := pods.NodeOf(ctx, c.PodName, c.PodUID)
		if err != nil || refusal != nil {
			return Caller{}, refusal, err
		}
		c.NodeName, c.NodeUID = name, uid
	}
	if c.NodeName != nodeName {
		return Caller{}, &Refusal{http.StatusForbidden, fmt.Sprintf("pod %s runs on node %s, not on node %s", c.PodName, c.NodeName, nodeName)}, nil
	}
	if c.NodeUID != nodeUID {
		return Caller{}, &Refusal{http.StatusForbidden, fmt.Sprintf("node %s has UID %s, not %s", c.NodeName, c.NodeUID, nodeUID)}, nil
	}
	return c, nil, nil
}

// single returns the only value of an extra, or "" when it has none or several.
func single(extra map[string]authenticationv1.ExtraValue, key string) string {
	if v := extra[key]; len(v) == 1 {
		return v[0]
	}
	return ""
}
