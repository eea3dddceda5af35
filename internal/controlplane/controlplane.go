package controlplane

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ToolsDirEnv names the environment variable that points at the binaries `make tools` built.
const ToolsDirEnv = "BRUPOP_TOOLS_DIR"

// controllers are the kube-controller-manager controllers a Brupop cluster relies on: workloads
// (so drains have real pods to evict), PDB status, garbage collection by owner references, and
// node lifecycle (NotReady taints while a node reboots).
var controllers = []string{
	"garbage-collector-controller", "disruption-controller", "replicaset-controller",
	"deployment-controller", "statefulset-controller", "daemonset-controller",
	"namespace-controller", "serviceaccount-controller", "node-lifecycle-controller",
	"pod-garbage-collector-controller", "endpointslice-controller",
}

// Options says which parts to start.
type Options struct {
	// ToolsDir holds kube-apiserver, etcd, kubectl, kube-controller-manager and kube-scheduler.
	// Empty means $BRUPOP_TOOLS_DIR, or what hack/tools/install.sh --print-dir says.
	ToolsDir string
	// ControllerManager starts kube-controller-manager with the controllers Brupop relies on.
	ControllerManager bool
	// Scheduler starts kube-scheduler.
	Scheduler bool
	// CRDDirs are directories of CRD manifests installed before Start returns.
	CRDDirs []string
	// Output, when set, receives the output of the control-plane processes.
	Output *os.File
}

// ControlPlane is a running control plane.
type ControlPlane struct {
	// Config is an administrator's (system:masters) client configuration.
	Config *rest.Config
	// KubeconfigPath is a kubeconfig file with the same administrator identity.
	KubeconfigPath string
	// ToolsDir is where the binaries came from; kubectl is there too.
	ToolsDir string
	// Dir is a temporary directory removed by Stop.
	Dir string

	env   *envtest.Environment
	procs []*exec.Cmd
	once  sync.Once
	err   error
}

// Start starts the control plane and waits until every part is healthy. On error, whatever had
// started is stopped again.
func Start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	toolsDir, err := resolveToolsDir(opts.ToolsDir)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "brupop-controlplane-")
	if err != nil {
		return nil, fmt.Errorf("controlplane: %w", err)
	}
	cp = &ControlPlane{ToolsDir: toolsDir, Dir: dir}
	defer func() {
		if err != nil {
			_ = cp.Stop()
			cp = nil
		}
	}()
	cp.env = &envtest.Environment{
		BinaryAssetsDirectory:    toolsDir,
		CRDDirectoryPaths:        opts.CRDDirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 60 * time.Second,
		ControlPlaneStopTimeout:  20 * time.Second,
		AttachControlPlaneOutput: opts.Output != nil,
	}
	if _, err := cp.env.Start(); err != nil {
		return cp, fmt.Errorf("controlplane: start etcd and kube-apiserver: %w", err)
	}
	admin, err := cp.env.AddUser(envtest.User{Name: "brupop-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return cp, fmt.Errorf("controlplane: add admin user: %w", err)
	}
	cp.Config = admin.Config()
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		return cp, fmt.Errorf("controlplane: admin kubeconfig: %w", err)
	}
	cp.KubeconfigPath = filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(cp.KubeconfigPath, kubeconfig, 0o600); err != nil {
		return cp, fmt.Errorf("controlplane: %w", err)
	}
	if opts.ControllerManager {
		if err := cp.startComponent(ctx, opts.Output, "kube-controller-manager", "/healthz",
			"--controllers="+strings.Join(controllers, ","),
			"--use-service-account-credentials=false",
			"--node-monitor-period=2s",
			"--kube-api-qps=100", "--kube-api-burst=200",
		); err != nil {
			return cp, err
		}
	}
	if opts.Scheduler {
		if err := cp.startComponent(ctx, opts.Output, "kube-scheduler", "/readyz"); err != nil {
			return cp, err
		}
	}
	return cp, nil
}

// KubectlPath is the path of the kubectl that `make tools` built.
func (cp *ControlPlane) KubectlPath() string { return filepath.Join(cp.ToolsDir, "kubectl") }

// AddUser returns a client configuration for a user authenticated by a client certificate, with
// the given groups and no other rights than RBAC gives them.
func (cp *ControlPlane) AddUser(name string, groups ...string) (*rest.Config, error) {
	u, err := cp.env.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("controlplane: add user %s: %w", name, err)
	}
	return u.Config(), nil
}

// ServiceAccountIssuer is the issuer kube-apiserver signs service-account tokens with.
func (cp *ControlPlane) ServiceAccountIssuer() string {
	return cp.env.ControlPlane.APIServer.Configure().Get("service-account-issuer").Get(nil)[0]
}

// startComponent runs a control-plane binary against the admin kubeconfig on a free port and
// waits until its health path answers 200.
func (cp *ControlPlane) startComponent(ctx context.Context, out *os.File, name, healthPath string, extra ...string) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("controlplane: %s: %w", name, err)
	}
	args := append([]string{
		"--kubeconfig=" + cp.KubeconfigPath,
		"--authentication-kubeconfig=" + cp.KubeconfigPath,
		"--authorization-kubeconfig=" + cp.KubeconfigPath,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(cp.Dir, name),
		"--leader-elect=false",
		"--profiling=false",
	}, extra...)
	cmd := exec.Command(filepath.Join(cp.ToolsDir, name), args...) //nolint:gosec // our own pinned binary
	// Die with the test process even if it is killed before Stop runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if out != nil {
		cmd.Stdout, cmd.Stderr = out, out
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("controlplane: start %s: %w", name, err)
	}
	cp.procs = append(cp.procs, cmd)
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, healthPath)
	if err := waitHealthy(ctx, url, 60*time.Second); err != nil {
		return fmt.Errorf("controlplane: %s did not become healthy: %w", name, err)
	}
	return nil
}

// Stop stops every process and removes the temporary files. It is safe to call more than once.
func (cp *ControlPlane) Stop() error {
	cp.once.Do(func() {
		var errs []error
		for i := len(cp.procs) - 1; i >= 0; i-- {
			errs = append(errs, stopProcess(cp.procs[i]))
		}
		if cp.env != nil {
			errs = append(errs, cp.env.Stop())
		}
		errs = append(errs, os.RemoveAll(cp.Dir))
		cp.err = errors.Join(errs...)
	})
	return cp.err
}

func stopProcess(cmd *exec.Cmd) error {
	if cmd.Process == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(20 * time.Second)
	defer timer.Stop()
	select {
	case werr := <-done:
		_ = werr // a non-zero exit after SIGTERM is how these processes stop
		return nil
	case <-timer.C:
		_ = cmd.Process.Kill()
		werr := <-done
		_ = werr
		return fmt.Errorf("controlplane: %s ignored SIGTERM for 20s and was killed", filepath.Base(cmd.Path))
	}
}

func resolveToolsDir(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(ToolsDirEnv)
	}
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		out, err := exec.Command(filepath.Join(root, "hack/tools/install.sh"), "--print-dir").Output()
		if err != nil {
			return "", fmt.Errorf("controlplane: locate tools: %w", err)
		}
		dir = strings.TrimSpace(string(out))
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("controlplane: %s missing in %s: run `make tools` first", b, dir)
		}
	}
	return dir, nil
}

// moduleRoot finds the directory of go.mod above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("controlplane: no go.mod above the working directory")
		}
		dir = parent
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHealthy polls url until it answers 200, ctx ends or timeout passes. The components serve
// self-signed certificates; only their health is read, so the certificate is not verified.
func waitHealthy(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // health probe only
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}
