package agentapi

import (
	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// Paths of the API server, exactly as upstream serves them.
const (
	// PathShadow creates the caller's shadow (POST) or replaces its status (PUT).
	PathShadow = "/bottlerocket-node-resource"
	// PathCordonAndDrain cordons the caller's node and evicts its pods (POST).
	PathCordonAndDrain = "/bottlerocket-node-resource/cordon-and-drain"
	// PathUncordon makes the caller's node schedulable again (POST).
	PathUncordon = "/bottlerocket-node-resource/uncordon"
	// PathExcludeFromLB labels the caller's node out of external load balancers (POST).
	PathExcludeFromLB = "/bottlerocket-node-resource/exclude-from-lb"
	// PathRemoveExclusionFromLB removes that label again (POST).
	PathRemoveExclusionFromLB = "/bottlerocket-node-resource/remove-exclusion-from-lb"
	// PathConvert is the CRD conversion webhook, called by kube-apiserver (POST, no agent auth).
	PathConvert = "/crdconvert"
	// PathPing answers "pong" for liveness and readiness probes (GET, no auth).
	PathPing = "/ping"
	// PathMetrics serves Prometheus metrics (GET, no agent auth).
	PathMetrics = "/metrics"
)

// Headers every agent request carries, as upstream spells them.
const (
	// HeaderNodeName names the node the agent runs on.
	HeaderNodeName = "BrupopNodeName"
	// HeaderNodeUID is the UID of that Node object.
	HeaderNodeUID = "BrupopNodeUid"
	// HeaderToken carries the agent's projected service-account token (audience
	// TokenAudience).
	HeaderToken = "BrupopK8sAuthToken"
	// HeaderDrainDeadline, on a cordon-and-drain request from our agent, asks the server to end
	// the drain at this RFC 3339 time; on the answer of a drain round it is the deadline the
	// server holds the drain to: the asked one, or earlier when the server's cap, counted from
	// the node's cordon time, ends it first. Upstream agents send no such header and get the
	// server's default deadline.
	HeaderDrainDeadline = "BrupopDrainDeadline"
)

// TokenAudience is the audience of the agent's token; the API server accepts no other.
const TokenAudience = "brupop-apiserver"

// Defaults of the deployment, as upstream ships them.
const (
	// ServiceName is the Service in front of the API server.
	ServiceName = "brupop-apiserver"
	// DefaultServicePort is that Service's port.
	DefaultServicePort = 443
	// DefaultInternalPort is the port the API server listens on.
	DefaultInternalPort = 8443
	// DefaultTLSDir holds tls.crt, tls.key and ca.crt.
	DefaultTLSDir = "/etc/brupop-tls-keys"
	// DefaultTokenPath is where the agent's projected token is mounted.
	DefaultTokenPath = "/var/run/secrets/tokens/bottlerocket-agent-service-account-token"
	// AgentServiceAccount is the ServiceAccount of agent pods.
	AgentServiceAccount = "brupop-agent-service-account"
	// AgentComponent is the value of v2.ComponentLabel on agent pods.
	AgentComponent = "agent"
)

// NodeSelector names a node; it is the body of a create request.
type NodeSelector struct {
	NodeName string `json:"node_name"`
	NodeUID  string `json:"node_uid"`
}

// CreateShadowRequest is the body of POST PathShadow. Upstream's server ignores it and trusts
// the headers; ours checks that both agree.
type CreateShadowRequest struct {
	NodeSelector NodeSelector `json:"node_selector"`
}

// UpdateStatusRequest is the body of PUT PathShadow: the whole new status.
type UpdateStatusRequest = v2.BottlerocketShadowStatus
