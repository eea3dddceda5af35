// Package apiserver is the HTTPS server through which node agents write to the cluster, and the
// CRD conversion webhook of BottlerocketShadow.
//
// Every agent request is authenticated by a TokenReview of its bound service-account token
// (audience agentapi.TokenAudience, results cached briefly) and authorized only for the node the
// token's pod runs on: an agent can create and report its own shadow, and cordon, drain,
// uncordon and exclude its own node from load balancers, nothing else. Drains run in the
// background, one per node, so no request blocks for longer than a poll time and a retry joins
// the running drain. What happens to a Node (cordoned, drain started, drained or failed with the
// pods that blocked it, uncordoned) is recorded as events.k8s.io/v1 Events on it.
package apiserver
