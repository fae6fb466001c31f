// Package controlplane starts a Kubernetes control plane on this machine from
// the binaries that hack/envtest.sh provides: etcd, kube-apiserver, and
// kube-controller-manager running only the garbage collector, namespace and
// csrsigning controllers, so that owner references cascade and namespaces
// empty as they do on a real cluster, and node identities get their client
// certificates. It installs skiff's CRDs, and the RBAC and admission policy
// that restrict node identities, before it returns.
//
// Tests and `skiff up` use it. It owns the processes it starts and nothing
// else: Stop ends exactly those, by their PIDs.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/skiff-dev/skiff/config"
)

// KubernetesVersion is the version of the control-plane binaries that
// hack/envtest.sh provides.
const KubernetesVersion = "1.36.3"

// DefaultAssetsDir is where hack/envtest.sh caches the binaries:
// $SKIFF_CACHE_DIR (or $XDG_CACHE_HOME/skiff, or ~/.cache/skiff) /envtest/<version>.
func DefaultAssetsDir() string {
	root := os.Getenv("SKIFF_CACHE_DIR")
	if root == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = filepath.Join(os.TempDir(), "skiff-cache")
		}
		root = filepath.Join(cache, "skiff")
	}
	return filepath.Join(root, "envtest", KubernetesVersion)
}

// Options configure a control plane.
type Options struct {
	// AssetsDir holds kube-apiserver, etcd, kube-controller-manager and
	// kubectl; empty means $KUBEBUILDER_ASSETS, or else DefaultAssetsDir.
	AssetsDir string
	// WorkDir receives the kubeconfig files and keeps the client CA
	// (client-ca.crt, client-ca.key: a restart on the same WorkDir keeps
	// issued node credentials valid); empty means a temporary directory,
	// removed by Stop.
	WorkDir string
	// EtcdDataDir keeps etcd's data; empty means a temporary directory.
	EtcdDataDir string
	// EtcdPath is an etcd binary to run instead of the one in AssetsDir.
	EtcdPath string
	// Output receives the logs of the control-plane processes; nil discards them.
	Output io.Writer
	// WithoutCRDs skips installing skiff's CRDs, and with them what
	// restricts node identities (the agent's ClusterRole bound to group
	// system:skiff-nodes, the skiff-node-restriction admission policy).
	WithoutCRDs bool
	// ExtraCRDs are installed besides skiff's own.
	ExtraCRDs []*apiextensionsv1.CustomResourceDefinition
	// Address is the IP address the API server listens on, which its
	// serving certificate also names (with localhost); empty means
	// 127.0.0.1. Network namespaces on a test bridge reach it on the
	// bridge's address.
	Address string
	// Webhooks installs skiff's validating and mutating webhook
	// configurations, pointed at a local webhook server whose address and
	// serving certificate WebhookServer returns. The caller must run that
	// server (the manager does when its Webhook options are set), or
	// admission of the objects they validate or default fails.
	Webhooks bool
	// APIServerDebugSocket, when set, is a unix socket path on which
	// kube-apiserver serves /debug/pprof without authentication
	// (--debug-socket-path), for benchmarks that profile the API server.
	APIServerDebugSocket string
}

// WebhookServer is where the API server expects skiff's webhook server.
type WebhookServer struct {
	Host    string
	Port    int
	CertDir string
}

// ControlPlane is a running etcd, kube-apiserver and kube-controller-manager.
type ControlPlane struct {
	// Config reaches the API server as a cluster administrator.
	Config *rest.Config
	// KubeconfigPath is a kubeconfig file for the same administrator.
	KubeconfigPath string
	// KubectlPath is the kubectl binary of the same Kubernetes version.
	KubectlPath string

	env        *envtest.Environment
	clientCA   *clientCA
	kcm        *exec.Cmd
	kcmDone    chan error
	workDir    string
	ownWorkDir bool
}

// Start starts the control plane and returns once the API server serves and
// the CRDs are established.
func Start(ctx context.Context, opts Options) (_ *ControlPlane, err error) {
	assets := opts.AssetsDir
	if assets == "" {
		assets = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if assets == "" {
		assets = DefaultAssetsDir()
	}
	for _, bin := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kubectl"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("control-plane binary %s missing in %s: run hack/envtest.sh", bin, assets)
		}
	}

	cp := &ControlPlane{workDir: opts.WorkDir, KubectlPath: filepath.Join(assets, "kubectl")}
	if cp.workDir == "" {
		if cp.workDir, err = os.MkdirTemp("", "skiff-controlplane-"); err != nil {
			return nil, err
		}
		cp.ownWorkDir = true
	} else if err := os.MkdirAll(cp.workDir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = cp.Stop()
		}
	}()

	crds := opts.ExtraCRDs
	if !opts.WithoutCRDs {
		own, err := config.CRDs()
		if err != nil {
			return nil, fmt.Errorf("loading skiff CRDs: %w", err)
		}
		crds = append(own, crds...)
	}
	cp.env = &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDs:                  crds,
		ErrorIfCRDPathMissing: true,
	}
	if opts.Webhooks {
		webhooks, err := config.ValidatingWebhooks()
		if err != nil {
			return nil, err
		}
		cp.env.WebhookInstallOptions.ValidatingWebhooks = []*admissionregistrationv1.ValidatingWebhookConfiguration{webhooks}
		defaulters, err := config.MutatingWebhooks()
		if err != nil {
			return nil, err
		}
		cp.env.WebhookInstallOptions.MutatingWebhooks = []*admissionregistrationv1.MutatingWebhookConfiguration{defaulters}
	}
	if opts.EtcdDataDir != "" || opts.EtcdPath != "" {
		cp.env.ControlPlane.Etcd = &envtest.Etcd{DataDir: opts.EtcdDataDir, Path: opts.EtcdPath}
	}
	if opts.Address != "" {
		port, err := freePort(opts.Address)
		if err != nil {
			return nil, err
		}
		cp.env.ControlPlane.APIServer = &envtest.APIServer{}
		cp.env.ControlPlane.APIServer.SecureServing.ListenAddr = envtest.ListenAddr{Address: opts.Address, Port: strconv.Itoa(port)}
	}
	if opts.Output != nil {
		cp.env.AttachControlPlaneOutput = true
		cp.env.ControlPlane.Etcd = withEtcdOutput(cp.env.ControlPlane.Etcd, opts.Output)
		if cp.env.ControlPlane.APIServer == nil {
			cp.env.ControlPlane.APIServer = &envtest.APIServer{}
		}
		cp.env.ControlPlane.APIServer.Out, cp.env.ControlPlane.APIServer.Err = opts.Output, opts.Output
	}
	if opts.APIServerDebugSocket != "" {
		if cp.env.ControlPlane.APIServer == nil {
			cp.env.ControlPlane.APIServer = &envtest.APIServer{}
		}
		cp.env.ControlPlane.APIServer.Configure().Set("debug-socket-path", opts.APIServerDebugSocket)
	}
	if cp.clientCA, err = loadOrCreateClientCA(cp.workDir); err != nil {
		return nil, err
	}
	cp.env.ControlPlane.GetAPIServer().SecureServing.Authn = cp.clientCA
	if cp.Config, err = cp.env.Start(); err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver: %w", err)
	}

	admin, err := cp.env.ControlPlane.AddUser(envtest.User{Name: "skiff-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("creating the admin user: %w", err)
	}
	cp.KubeconfigPath = filepath.Join(cp.workDir, "admin.kubeconfig")
	if err := writeKubeconfig(admin, cp.KubeconfigPath); err != nil {
		return nil, err
	}
	if err := cp.startControllerManager(ctx, assets, opts.Output); err != nil {
		return nil, err
	}
	if !opts.WithoutCRDs {
		if err := installNodeRestriction(ctx, cp.Config); err != nil {
			return nil, err
		}
	}
	return cp, nil
}

// freePort finds a free TCP port on the address.
func freePort(address string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s for the API server: %w", address, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func withEtcdOutput(e *envtest.Etcd, out io.Writer) *envtest.Etcd {
	if e == nil {
		e = &envtest.Etcd{}
	}
	e.Out, e.Err = out, out
	return e
}

func writeKubeconfig(user *envtest.AuthenticatedUser, path string) error {
	raw, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering kubeconfig: %w", err)
	}
	return os.WriteFile(path, raw, 0o600)
}

// startControllerManager runs kube-controller-manager with only the
// garbage collector, namespace, CSR signing and admission policy status
// controllers, under its own identity. The signer signs the approved
// CertificateSigningRequests of signer kubernetes.io/kube-apiserver-client
// with the client CA: that is how `skiff node credentials` gets a node its
// certificate. The policy status controller type-checks
// ValidatingAdmissionPolicies, which Start waits for.
func (cp *ControlPlane) startControllerManager(ctx context.Context, assets string, out io.Writer) error {
	user, err := cp.env.ControlPlane.AddUser(envtest.User{Name: "system:kube-controller-manager", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating the controller-manager user: %w", err)
	}
	kubeconfig := filepath.Join(cp.workDir, "controller-manager.kubeconfig")
	if err := writeKubeconfig(user, kubeconfig); err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig,
		"--controllers=garbagecollector,namespace,certificatesigningrequest-signing-controller,validatingadmissionpolicy-status-controller",
		"--cluster-signing-kube-apiserver-client-cert-file="+cp.clientCA.certFile,
		"--cluster-signing-kube-apiserver-client-key-file="+cp.clientCA.keyFile,
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
		"--concurrent-namespace-syncs=5",
		"--v=1",
	)
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	// The controller manager must not outlive whoever started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	cp.kcm = cmd
	cp.kcmDone = make(chan error, 1)
	go func() { cp.kcmDone <- cmd.Wait() }()

	// It has no health endpoint when serving is off; a quick exit means bad flags.
	select {
	case err := <-cp.kcmDone:
		cp.kcm = nil
		return fmt.Errorf("kube-controller-manager exited at start: %v", err)
	case <-time.After(500 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ClientCAFile is the CA that signs the client certificates the API server
// accepts (the administrator's among them), for components such as the
// agent API that authenticate the same clients.
func (cp *ControlPlane) ClientCAFile() (string, error) {
	if _, err := os.Stat(cp.clientCA.certFile); err != nil {
		return "", fmt.Errorf("the API server's client CA: %w", err)
	}
	return cp.clientCA.certFile, nil
}

// AddUser returns a client configuration for a new user, authenticated by a
// client certificate, in the given groups. With no privileged group it may do
// only what RBAC grants it, which lets tests run a component bound to its
// own role.
func (cp *ControlPlane) AddUser(name string, groups ...string) (*rest.Config, error) {
	user, err := cp.env.ControlPlane.AddUser(envtest.User{Name: name, Groups: groups}, nil)
	if err != nil {
		return nil, fmt.Errorf("creating user %s: %w", name, err)
	}
	return user.Config(), nil
}

// WebhookServer returns where the API server calls skiff's webhooks, when
// Options.Webhooks was set.
func (cp *ControlPlane) WebhookServer() WebhookServer {
	w := cp.env.WebhookInstallOptions
	return WebhookServer{Host: w.LocalServingHost, Port: w.LocalServingPort, CertDir: w.LocalServingCertDir}
}

// Stop ends the controller manager, the API server and etcd, and removes
// the temporary directories Start made.
func (cp *ControlPlane) Stop() error {
	var errs []error
	if cp.kcm != nil {
		_ = cp.kcm.Process.Signal(syscall.SIGTERM)
		select {
		case <-cp.kcmDone:
		case <-time.After(10 * time.Second):
			_ = cp.kcm.Process.Kill()
			<-cp.kcmDone
		}
		cp.kcm = nil
	}
	if cp.env != nil {
		if err := cp.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping etcd and kube-apiserver: %w", err))
		}
		cp.env = nil
	}
	if cp.ownWorkDir {
		if err := os.RemoveAll(cp.workDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
