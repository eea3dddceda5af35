package kubectlbrupop

import (
	"github.com/spf13/cobra"

	"github.com/bottlerocket-os/brupop-go/internal/fleetview"
)

func newStatusCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show every node's update and a summary of the rollout",
		Example: `  kubectl brupop status
  kubectl brupop status -o json | jq '.summary'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			ctx, cancel := o.context(cmd.Context())
			defer cancel()
			in, err := o.readInput(ctx)
			if err != nil {
				return err
			}
			st := fleetview.BuildStatus(in)
			if o.Output == "json" {
				return writeJSON(o.Streams.Out, st)
			}
			return fleetview.WriteStatus(o.Streams.Out, st, width(o.Streams.Out))
		},
	}
}

func newWhyCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "why NODE",
		Short: "Explain why a node is or is not updating",
		Long: "why explains what the controller decides for the node on its next pass: not opted in, window closed,\n" +
			"concurrency full, backoff, halted version, invalid policy, paused, own node last, in flight, or up to date.\n" +
			"It decides with the settings the controller published in the FleetPolicy's status.applied.",
		Example: "  kubectl brupop why ip-10-0-1-23.us-west-2.compute.internal",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			ctx, cancel := o.context(cmd.Context())
			defer cancel()
			in, err := o.readInput(ctx)
			if err != nil {
				return err
			}
			e, err := fleetview.Why(in, args[0])
			if err != nil {
				return err
			}
			if o.Output == "json" {
				return writeJSON(o.Streams.Out, e)
			}
			return fleetview.WriteExplanation(o.Streams.Out, e)
		},
	}
}
