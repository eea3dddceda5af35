package sim

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// kwokStages is the Stage configuration kwok runs with: the upstream fast node and pod stages,
// node heartbeats with leases, the node-not-ready chaos stage that simulates reboots, an opt-in
// pod readiness delay and pod-ready-again (see the file's header).
//
//go:embed kwok-stages.yaml
var kwokStages []byte

// Labels and annotations of kwok's stages the simulation uses.
const (
	kwokManagedLabel     = "kwok.x-k8s.io/managed"
	kwokNotReadyLabel    = "node-not-ready.stage.kwok.x-k8s.io"
	kwokNotReadyDelay    = "node-not-ready.stage.kwok.x-k8s.io/delay"
	kwokNotReadyJitter   = "node-not-ready.stage.kwok.x-k8s.io/jitter-delay"
	kwokNotReadyReason   = "node-not-ready.stage.kwok.x-k8s.io/reason"
	kwokPodReadyDelay    = "pod-ready.stage.kwok.x-k8s.io/delay"
	kwokTaintKey         = "kwok.x-k8s.io/node"
	kwokNodeAnnotation   = "kwok.x-k8s.io/node"
	kwokLeaseDurationSec = "40"
)

// kwokProcess is a running kwok.
type kwokProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
}

// startKwok runs kwok from toolsDir against the cluster of kubeconfig, managing the nodes that
// carry kwokManagedLabel. Its configuration goes into dir.
func startKwok(toolsDir, kubeconfig, dir string, out io.Writer) (*kwokProcess, error) {
	stages := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o600); err != nil {
		return nil, fmt.Errorf("sim: write kwok stages: %w", err)
	}
	bin := filepath.Join(toolsDir, "kwok")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("sim: kwok missing in %s: run `make tools` first", toolsDir)
	}
	cmd := exec.Command(bin, //nolint:gosec // our own pinned binary
		"--kubeconfig="+kubeconfig,
		"-c", stages,
		"--manage-all-nodes=false",
		"--manage-nodes-with-label-selector="+kwokManagedLabel+"=true",
		"--node-lease-duration-seconds="+kwokLeaseDurationSec,
		"--cidr=10.244.0.0/16",
	)
	// Die with this process even if it is killed before stop runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("sim: start kwok: %w", err)
	}
	k := &kwokProcess{cmd: cmd, done: make(chan struct{})}
	go func() {
		k.err = cmd.Wait()
		close(k.done)
	}()
	return k, nil
}

// exited returns an error when kwok is no longer running.
func (k *kwokProcess) exited() error {
	select {
	case <-k.done:
		return fmt.Errorf("sim: kwok exited: %w", k.err)
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to 20 s before killing kwok.
func (k *kwokProcess) stop() error {
	if k == nil {
		return nil
	}
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case <-k.done:
		return nil
	case <-timer.C:
		_ = k.cmd.Process.Kill()
		<-k.done
		return errors.New("sim: kwok ignored SIGTERM for 20s and was killed")
	}
}
