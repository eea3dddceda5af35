package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/term"
	"k8s.io/klog/v2"

	"github.com/bottlerocket-os/brupop-go/internal/sim"
)

func init() {
	subcommands["cluster"] = subcommand{
		summary: "a local control plane with a simulated fleet, rolling out an update (make demo)",
		run:     runCluster,
	}
}

// faultFlags collects repeated --fail NODE:STEP flags.
type faultFlags []sim.Fault

func (f *faultFlags) String() string {
	parts := make([]string, len(*f))
	for i, x := range *f {
		parts[i] = x.String()
	}
	return strings.Join(parts, ",")
}

func (f *faultFlags) Set(s string) error {
	fault, err := sim.ParseFault(s)
	if err != nil {
		return err
	}
	*f = append(*f, fault)
	return nil
}

// versionFlags collects a repeatable version flag.
type versionFlags []string

func (v *versionFlags) String() string { return strings.Join(*v, ",") }

func (v *versionFlags) Set(s string) error {
	*v = append(*v, s)
	return nil
}

// clusterFlags are the flags of `brupop-sim cluster` besides the simulation's options.
type clusterFlags struct {
	jsonPath, logPath string
	keep              bool
}

// parseClusterFlags parses the flags into validated options.
func parseClusterFlags(args []string, stderr io.Writer) (sim.Options, clusterFlags, error) {
	o := sim.DefaultOptions()
	var cf clusterFlags
	var faults faultFlags
	var alsoOffer versionFlags
	fs := flag.NewFlagSet("brupop-sim cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Nodes, "nodes", o.Nodes, "number of simulated nodes")
	fs.IntVar(&o.MaxConcurrent, "max-concurrent", o.MaxConcurrent, "most nodes updating at once (FleetPolicy maxConcurrentUpdates)")
	fs.StringVar(&o.Cron, "cron", "", `update window, upstream's cron dialect "sec min hour dom month dow" (default: always)`)
	fs.StringVar(&o.From, "from", o.From, "Bottlerocket version every node runs at start")
	fs.StringVar(&o.To, "to", "", "version to release (default: one minor newer than --from)")
	fs.DurationVar(&o.RebootTime, "reboot-time", o.RebootTime, "how long a reboot keeps a node down")
	fs.DurationVar(&o.PrepareTime, "prepare-time", o.PrepareTime, "how long downloading an update takes (±20%)")
	fs.DurationVar(&o.MonitoringPeriod, "monitoring-period", o.MonitoringPeriod, "how long a node must stay healthy after its reboot")
	fs.Var(&alsoOffer, "also-offer", "VERSION: a version newer than --to that the hosts offer too; repeatable (with --max-version --to, nodes stay at --to)")
	fs.StringVar(&o.MaxVersion, "max-version", "", "FleetPolicy maxVersion: cap the version nodes update to")
	fs.DurationVar(&o.ReleaseSoak, "release-soak", 0, "FleetPolicy releaseSoak: how long a version is offered before nodes start on it")
	fs.IntVar(&o.Zones, "zones", 0, "label the nodes round-robin with this many zones (topology.kubernetes.io/zone)")
	fs.IntVar(&o.ZonesInFlight, "zones-in-flight", 0, "FleetPolicy zones.maxInFlight: how many zones update at once (default: zones ignored)")
	fs.Var(&faults, "fail", "NODE:STEP: make NODE fail STEP (refresh, prepare, activate, boot, monitor); repeatable")
	fs.Int64Var(&o.Seed, "seed", o.Seed, "seed of the simulation's jitter")
	fs.DurationVar(&o.Timeout, "timeout", 0, "give up on the rollout after this long (default: an estimate from the other flags)")
	fs.StringVar(&cf.jsonPath, "json", "", "write the summary as JSON to this file")
	fs.StringVar(&cf.logPath, "log", "", "write the components' and processes' logs to this file")
	fs.BoolVar(&cf.keep, "keep", false, "stay up after the rollout and print how to reach the cluster, until interrupted")
	if err := fs.Parse(args); err != nil {
		return o, cf, err
	}
	if fs.NArg() > 0 {
		return o, cf, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	o.Faults = faults
	o.AlsoOffer = alsoOffer
	return o, cf, o.Validate()
}

// runCluster brings a simulated cluster up, rolls the release out and prints the summary.
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, cf, err := parseClusterFlags(args, stderr)
	if err != nil {
		return err
	}
	if cf.logPath != "" {
		f, err := os.Create(cf.logPath)
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		defer func() { _ = f.Close() }()
		opts.ProcessOutput = f
		opts.Log = logr.FromSlogHandler(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// client-go's own logging would tear through the live table.
	klog.SetLogger(opts.Log)
	fmt.Fprintf(stdout, "Starting a control plane, kwok and %d simulated Bottlerocket nodes on %s...\n", opts.Nodes, opts.From)
	began := time.Now()
	c, err := sim.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "Stopping the cluster...")
		if err := c.Stop(); err != nil {
			fmt.Fprintf(stderr, "brupop-sim cluster: stop: %v\n", err)
		}
	}()
	fmt.Fprintf(stdout, "Cluster up in %.1fs. Releasing %s: max %d at once, monitoring %s.\n\n",
		time.Since(began).Seconds(), c.Options.To, opts.MaxConcurrent, opts.MonitoringPeriod)
	view := sim.NewLogView(stdout, c.Options)
	if width, ok := terminalWidth(stdout); ok {
		view = sim.NewTerminalView(stdout, width, c.Options)
	}
	summary, err := c.Rollout(ctx, view)
	if err != nil {
		return err
	}
	if cf.jsonPath != "" {
		if err := writeJSON(cf.jsonPath, summary); err != nil {
			return err
		}
	}
	if cf.keep {
		keepUp(ctx, stdout, c)
	}
	if !summary.OK {
		return errors.New("the rollout broke an invariant, failed unexpectedly or timed out (see the summary)")
	}
	return nil
}

// keepUp prints how to reach the cluster and waits until interrupted.
func keepUp(ctx context.Context, w io.Writer, c *sim.Cluster) {
	cp := c.ControlPlane
	fmt.Fprintf(w, "\nThe cluster stays up until you press Ctrl-C. Try:\n  export KUBECONFIG=%s\n  %s get brs -n %s\n",
		cp.KubeconfigPath, cp.KubectlPath(), sim.Namespace)
	<-ctx.Done()
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil { //nolint:gosec // a report for people
		return fmt.Errorf("summary: %w", err)
	}
	return nil
}

// terminalWidth returns the width of w when it is a terminal that understands ANSI escapes.
func terminalWidth(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		width = 80
	}
	return width, true
}
