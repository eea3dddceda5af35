package v2

import "strings"

// Labels, names and values shared by every component and kept exactly as upstream spells them.
const (
	// NodeOptInLabel marks the nodes whose updates Brupop manages.
	NodeOptInLabel = "bottlerocket.aws/updater-interface-version"
	// NodeOptInValue is the only value of NodeOptInLabel that opts a node in.
	NodeOptInValue = "2.0.0"
	// ComponentLabel names the component of a Brupop object or pod.
	ComponentLabel = "brupop.bottlerocket.aws/component"
	// ExcludeFromLBLabel takes a node out of external load balancers before its drain.
	ExcludeFromLBLabel = "node.kubernetes.io/exclude-from-external-load-balancers"
	// DefaultNamespace is where Brupop runs and keeps its shadows.
	DefaultNamespace = "brupop-bottlerocket-aws"
	// shadowPrefix starts the name of every shadow.
	shadowPrefix = "brs-"
)

// ShadowName returns the name of the shadow of the named node.
func ShadowName(node string) string { return shadowPrefix + node }

// NodeNameFromShadow returns the node a shadow name belongs to, and false if the name is not a
// shadow's.
func NodeNameFromShadow(shadow string) (string, bool) {
	return strings.CutPrefix(shadow, shadowPrefix)
}
