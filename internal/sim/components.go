package sim

import (
	"context"
	"net"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
)

// RunFunc runs a component until ctx ends. It returns nil when ctx ended, an error when the
// component could not run.
type RunFunc func(ctx context.Context) error

// APIServerEnv is what the Brupop API server needs in the simulated cluster.
type APIServerEnv struct {
	// REST authenticates as the API server's ServiceAccount.
	REST *rest.Config
	// Namespace is Brupop's namespace.
	Namespace string
	// TLSDir holds tls.crt and tls.key, issued by the simulation's CA for 127.0.0.1.
	TLSDir string
	// Listener is where to serve HTTPS; the CRD's conversion webhook points at it.
	Listener net.Listener
	// Log receives the server's logs.
	Log logr.Logger
}

// ControllerEnv is what the Brupop controller needs in the simulated cluster.
type ControllerEnv struct {
	// REST authenticates as the controller's ServiceAccount.
	REST *rest.Config
	// Namespace is Brupop's namespace, holding the shadows and the FleetPolicy.
	Namespace string
	// MaxConcurrentUpdate is the environment's default of the FleetPolicy's concurrency.
	MaxConcurrentUpdate string
	// Log receives the controller's logs.
	Log logr.Logger
}

// AgentEnv is what one node's agent needs in the simulated cluster.
type AgentEnv struct {
	// NodeName is the agent's node; Namespace holds its shadow.
	NodeName, Namespace string
	// Kube authenticates as the agent ServiceAccount with a token bound to the node's agent pod.
	Kube *rest.Config
	// ServerURL is the Brupop API server's https URL; CAPath the CA its certificate chains to.
	ServerURL, CAPath string
	// TokenPath holds a token bound to the agent pod, for audience agentapi.TokenAudience.
	TokenPath string
	// HostSocket is the node's host API socket.
	HostSocket string
	// RefreshInterval is how often the agent asks the host for updates; short in a simulation.
	RefreshInterval time.Duration
	// Log receives the agent's logs.
	Log logr.Logger
}

// Components build Brupop's components. A nil constructor leaves that component out, so a
// cluster can come up before all of them exist (and a story can bring its own).
type Components struct {
	APIServer  func(APIServerEnv) (RunFunc, error)
	Controller func(ControllerEnv) (RunFunc, error)
	Agent      func(AgentEnv) (RunFunc, error)
}

// complete reports whether every component is present, i.e. a rollout can happen.
func (c *Components) complete() bool {
	return c != nil && c.APIServer != nil && c.Controller != nil && c.Agent != nil
}
