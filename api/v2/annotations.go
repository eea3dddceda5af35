package v2

// DrainTimeoutAnnotation is set by the controller on a shadow when its node starts an update; it
// holds the drain deadline the agent hands to the API server, as a Go duration ("10m0s"). It is
// absent when the API server's default applies.
const DrainTimeoutAnnotation = "brupop.bottlerocket.aws/drain-timeout"

// CordonedAnnotation is set on a Node when Brupop cordoned it; Brupop only uncordons Nodes that
// carry it, and a Node that is unschedulable and carries it is still disrupted by an update.
const CordonedAnnotation = "brupop.bottlerocket.aws/cordoned-by-brupop"

// CordonTimeAnnotation is set on a Node, as an RFC 3339 time, when Brupop's API server cordons it
// for a drain (or first finds it cordoned by someone else): a drain's deadline counts from it on
// every API-server replica. The uncordon that ends the update removes it.
const CordonTimeAnnotation = "brupop.bottlerocket.aws/cordoned-at"
