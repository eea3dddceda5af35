package kubectlbrupop

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// DefaultRequestTimeout bounds every request to the API server unless --request-timeout says
// otherwise; "0" also means this, so that no request waits forever.
const DefaultRequestTimeout = 30 * time.Second

// Options are the plugin's global flags and what its commands share.
type Options struct {
	// ConfigFlags are kubectl's connection flags (--kubeconfig, --context, -n, ...).
	ConfigFlags *genericclioptions.ConfigFlags
	// Output is "" (text for people) or "json".
	Output string
	// Streams are where the commands write.
	Streams genericiooptions.IOStreams
	// Clock gives the time views are computed at.
	Clock clock.PassiveClock
}

// NewCommand returns the root command of `kubectl brupop` writing to streams.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := &Options{ConfigFlags: genericclioptions.NewConfigFlags(true), Streams: streams, Clock: clock.RealClock{}}
	timeout := DefaultRequestTimeout.String()
	o.ConfigFlags.Timeout = &timeout
	root := &cobra.Command{
		Use:   "kubectl-brupop",
		Short: "Inspect and steer Brupop's rollout of Bottlerocket updates",
		Long: "kubectl brupop shows the Bottlerocket update rollout of the fleet, explains why a node is or is not\n" +
			"updating, and pauses or resumes the rollout through the FleetPolicy.\n\n" +
			"The namespace (-n) defaults to " + v2.DefaultNamespace + ".",
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations: map[string]string{
			cobra.CommandDisplayNameAnnotation: "kubectl brupop",
		},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	root.SetIn(streams.In)
	o.ConfigFlags.AddFlags(root.PersistentFlags())
	root.PersistentFlags().StringVarP(&o.Output, "output", "o", "", "output format: empty for text or json")
	root.AddCommand(newStatusCommand(o), newWhyCommand(o), newPauseCommand(o), newResumeCommand(o))
	return root
}

// validate checks the global flags.
func (o *Options) validate() error {
	if o.Output != "" && o.Output != "json" {
		return fmt.Errorf("kubectl-brupop: --output %q: want json or nothing (text)", o.Output)
	}
	return nil
}

// namespace returns -n, or Brupop's namespace when it is not given.
func (o *Options) namespace() string {
	if ns := o.ConfigFlags.Namespace; ns != nil && *ns != "" {
		return *ns
	}
	return v2.DefaultNamespace
}

// client returns a client of the cluster the flags name, every request of which has a deadline.
func (o *Options) client() (client.Client, error) {
	cfg, err := o.ConfigFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("kubectl-brupop: load the kubeconfig: %w", err)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultRequestTimeout
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("kubectl-brupop: build the scheme: %w", err)
	}
	if err := v2.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("kubectl-brupop: build the scheme: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("kubectl-brupop: connect to %s: %w", cfg.Host, err)
	}
	return c, nil
}

// context bounds a whole command: a few requests, each with its own deadline.
func (o *Options) context(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, 4*DefaultRequestTimeout)
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("kubectl-brupop: write JSON: %w", err)
	}
	return nil
}

// width returns the width of the terminal w writes to, or 0 (no limit) when it is not one.
func width(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}
