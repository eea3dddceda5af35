// Command kubectl-brupop is the `kubectl brupop` plugin: put it on PATH and run
// `kubectl brupop status`, `why NODE`, `pause` or `resume [VERSION]`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	// The plugin evaluates the schedule in the time zone the controller published
	// (status.applied), which the operator's machine may not have in its zoneinfo.
	_ "time/tzdata"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/bottlerocket-os/brupop-go/internal/kubectlbrupop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := kubectlbrupop.NewCommand(genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
