package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi/hostapitest"
)

func init() {
	subcommands["host"] = subcommand{
		summary: "serve one simulated Bottlerocket host API on a Unix socket",
		run:     runHost,
	}
}

// hostOptions are the flags of `brupop-sim host`.
type hostOptions struct {
	socket      string
	version     string
	available   string
	variant     string
	arch        string
	commandTime time.Duration
	rebootTime  time.Duration
}

// parseHostFlags parses and validates the host flags into a simulator config.
func parseHostFlags(args []string, stderr io.Writer) (string, hostapitest.Config, error) {
	var o hostOptions
	fs := flag.NewFlagSet("brupop-sim host", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.socket, "socket", "", "Unix socket to serve the host API on (required)")
	fs.StringVar(&o.version, "version", "", "running OS version, e.g. 1.20.0 (required)")
	fs.StringVar(&o.available, "available", "", "comma-separated versions in the update repository (default: --version)")
	fs.StringVar(&o.variant, "variant", "aws-k8s-1.31", "Bottlerocket variant")
	fs.StringVar(&o.arch, "arch", "x86_64", "architecture: x86_64 or aarch64")
	fs.DurationVar(&o.commandTime, "command-time", time.Second, "how long each update command holds the update lock")
	fs.DurationVar(&o.rebootTime, "reboot-time", 2*time.Second, "how long a reboot keeps the socket down")
	if err := fs.Parse(args); err != nil {
		return "", hostapitest.Config{}, err
	}
	switch {
	case fs.NArg() > 0:
		return "", hostapitest.Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	case o.socket == "":
		return "", hostapitest.Config{}, errors.New("--socket is required")
	case o.version == "":
		return "", hostapitest.Config{}, errors.New("--version is required")
	case o.arch != "x86_64" && o.arch != "aarch64":
		return "", hostapitest.Config{}, fmt.Errorf("--arch %q: want x86_64 or aarch64", o.arch)
	case o.commandTime < 0 || o.rebootTime < 0:
		return "", hostapitest.Config{}, errors.New("--command-time and --reboot-time must not be negative")
	}
	cfg := hostapitest.Config{
		Version: o.version, Variant: o.variant, Arch: o.arch,
		CommandTime: o.commandTime, RebootTime: o.rebootTime,
	}
	if o.available != "" {
		cfg.Available = strings.Split(o.available, ",")
	}
	return o.socket, cfg, nil
}

// runHost serves one simulated host until ctx ends.
func runHost(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	socket, cfg, err := parseHostFlags(args, stderr)
	if err != nil {
		return err
	}
	cfg.OnReboot = func(ev hostapitest.RebootEvent) {
		fmt.Fprintf(stdout, "reboot %s: version %s rolledBack=%t\n", strings.ToLower(string(ev.Phase)), ev.Version, ev.RolledBack)
	}
	h, err := hostapitest.Start(socket, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving host %s %s %s on %s\n", cfg.Version, cfg.Variant, cfg.Arch, socket)
	<-ctx.Done()
	return h.Close()
}
