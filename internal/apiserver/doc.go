// Package apiserver is the HTTPS server through which node agents write to the cluster, and the
// CRD conversion webhook of BottlerocketShadow.
//
// Every agent request is authenticated by a TokenReview of its bound service-account token
// (audience agentapi.TokenAudience, results cached briefly) and authorized only for the node the
// token's pod runs on: an agent can create and report its own shadow, and cordon, drain,
// uncordon and exclude its own node from load balancers, nothing else. The server keeps no drain
// state between requests: a cordon-and-drain request runs one bounded round of evictions and
// answers, and the drain's deadline counts from the cordon time the server writes on the Node,
// so that any replica answers any request alike (docs/architecture.md, "Drains"). What happens to a Node (cordoned, drain started, drained or failed with the
// pods that blocked it, uncordoned) is recorded as events.k8s.io/v1 Events on it.
package apiserver
