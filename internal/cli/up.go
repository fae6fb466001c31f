package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/internal/nodeid"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// Addresses of a `skiff up` cluster. The node's pod CIDR is the first one
// node IPAM hands out of the cluster CIDR, so the Node's spec.podCIDR and
// the bridge agree from the first start on.
const (
	upClusterCIDR = "10.244.0.0/16"
	upPodCIDR     = "10.244.0.0/24"
	upServiceCIDR = "10.112.0.0/16"
)

type upOptions struct {
	dataDir     string
	assetsDir   string
	nodeName    string
	verbose     bool
	readyWithin time.Duration
}

func newUpCommand() *cobra.Command {
	o := upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a local single-node skiff cluster in the foreground; Ctrl-C stops it",
		Long: `up starts a complete single-node skiff cluster on this machine and keeps it in
the foreground: etcd, kube-apiserver and kube-controller-manager (garbage
collector and namespace controllers) from the binaries hack/envtest.sh caches,
skiff's CRDs, skiff-controller-manager, and skiff-agent with its own containerd
(the skiff-agent and skiff-pause binaries next to skiff, as make build puts them).
It waits until the node is Ready and writes a kubeconfig.

Everything lives in the data directory: running up again brings back the same
objects; "skiff down" stops a running up, "skiff down --purge" also deletes the
data and everything the node left on the host. Needs root, containerd, runc,
the CNI plugins and nftables (make run installs them on Debian and Ubuntu).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runUp(ctx, cmd.OutOrStdout(), o)
		},
	}
	addDataDirFlag(cmd, &o.dataDir)
	cmd.Flags().StringVar(&o.assetsDir, "assets-dir", "", "directory of kube-apiserver, etcd, kube-controller-manager and kubectl (default: $KUBEBUILDER_ASSETS, else the cache hack/envtest.sh fills)")
	cmd.Flags().StringVar(&o.nodeName, "node-name", "", "name of the node (default: the host name; kept in the data directory)")
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "also print the logs of the control plane, controllers and agent (they always go to <data-dir>/logs)")
	cmd.Flags().DurationVar(&o.readyWithin, "wait", 2*time.Minute, "how long to wait for the node to become Ready")
	return cmd
}

func addDataDirFlag(cmd *cobra.Command, dst *string) {
	cmd.Flags().StringVar(dst, "data-dir", defaultDataDir(), "directory that keeps the local cluster's state and kubeconfig ($SKIFF_DATA_DIR)")
}

func defaultDataDir() string {
	if dir := os.Getenv("SKIFF_DATA_DIR"); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".skiff"
	}
	return filepath.Join(home, ".local", "share", "skiff")
}

// progress prints steps with the time since start, and, for long steps,
// a line every interval while they run.
type progress struct {
	out      io.Writer
	start    time.Time
	interval time.Duration
}

func (p *progress) say(format string, args ...any) {
	fmt.Fprintf(p.out, "[%6.1fs] %s\n", time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}

// step runs fn as a named step and reports how long it took.
func (p *progress) step(name string, fn func() error) error {
	p.say("%s ...", name)
	begin := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.say("%s: %.0fs elapsed", name, time.Since(begin).Seconds())
			}
		}
	}()
	err := fn()
	close(done)
	if err != nil {
		p.say("%s: failed after %.1fs", name, time.Since(begin).Seconds())
		return err
	}
	p.say("%s: done in %.1fs", name, time.Since(begin).Seconds())
	return nil
}

func runUp(ctx context.Context, out io.Writer, o upOptions) (err error) {
	p := &progress{out: out, start: time.Now(), interval: 10 * time.Second}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	c := cluster{dir: dataDir}

	// 1. Prerequisites, before anything starts.
	if err := checkPrerequisites(exec.LookPath, os.Geteuid()); err != nil {
		return err
	}
	assets, err := controlPlaneAssets(o.assetsDir)
	if err != nil {
		return err
	}
	agentBin, err := siblingBinary("skiff-agent")
	if err != nil {
		return err
	}
	pauseBin, err := siblingBinary("skiff-pause")
	if err != nil {
		return err
	}
	if n := len(c.containerdSock()); n > 100 {
		return fmt.Errorf("data directory %s is too deep: containerd's socket path would be %d bytes, more than a unix socket allows; use a shorter --data-dir", dataDir, n)
	}

	// 2. The data directory, held by this process.
	for _, d := range []string{dataDir, c.logDir(), c.agentRoot()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	state, err := claimDataDir(c, o.nodeName)
	if err != nil {
		return err
	}
	defer os.Remove(c.statePath())
	p.say("Data directory %s (node %s)", dataDir, state.NodeName)

	logs, closeLogs, err := openLogs(c, o.verbose)
	if err != nil {
		return err
	}
	defer closeLogs()
	ctrl.SetLogger(zap.New(zap.WriteTo(logs.manager)))

	// 3. Control plane.
	var cp *controlplane.ControlPlane
	if err := p.step("Starting etcd, kube-apiserver and kube-controller-manager, installing the CRDs", func() error {
		var err error
		cp, err = controlplane.Start(ctx, controlplane.Options{
			AssetsDir:   assets,
			WorkDir:     c.controlDir(),
			EtcdDataDir: c.etcdDir(),
			Output:      logs.controlPlane,
			Webhooks:    true,
		})
		return err
	}); err != nil {
		return fmt.Errorf("%w (logs in %s)", err, c.logDir())
	}
	defer func() {
		p.say("Stopping the control plane")
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(out, "warning:", err)
		}
	}()
	if err := writeUserKubeconfig(cp.KubeconfigPath, c.kubeconfig()); err != nil {
		return err
	}
	state.Processes = append([]process{processOf(os.Getpid(), "skiff up")}, childProcesses()...)
	if err := c.writeState(state); err != nil {
		return err
	}

	// 4. skiff-controller-manager, in this process.
	wh := cp.WebhookServer()
	mgr, err := manager.New(cp.Config, manager.Options{
		MetricsAddr: "0", ProbeAddr: "0",
		Webhooks: true, WebhookHost: wh.Host, WebhookPort: wh.Port, WebhookCertDir: wh.CertDir,
		ServiceCIDR: upServiceCIDR, ClusterCIDR: upClusterCIDR,
	})
	if err != nil {
		return err
	}
	mctx, stopManager := context.WithCancel(context.WithoutCancel(ctx))
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mctx) }()
	defer func() {
		p.say("Stopping skiff-controller-manager")
		stopManager()
		<-mgrDone
	}()
	p.say("skiff-controller-manager running (log: %s)", filepath.Join(c.logDir(), "manager.log"))

	// 5. skiff-agent with a managed containerd, as its own node identity
	// (system:skiff-node:<node>), never as the administrator. Its API
	// (logs, exec) accepts the clients of the API server, the kubeconfig's
	// user among them, by the control plane's client CA.
	clientCA, err := cp.ClientCAFile()
	if err != nil {
		return err
	}
	if err := p.step(fmt.Sprintf("Issuing the credentials of node %s (%s)", state.NodeName, nodeid.UserName(state.NodeName)), func() error {
		return writeNodeKubeconfig(ctx, cp.Config, state.NodeName, c.nodeKubeconfig())
	}); err != nil {
		return err
	}
	agent, err := startAgent(c, state, agentBin, pauseBin, clientCA, logs.agent)
	if err != nil {
		return err
	}
	state.Processes = append(state.Processes, processOf(agent.cmd.Process.Pid, "skiff-agent"))
	if err := c.writeState(state); err != nil {
		return err
	}
	defer func() {
		p.say("Stopping skiff-agent and the node's containers (images and objects are kept)")
		agent.stop()
		if err := stopNodeContainers(c, state, pauseBin); err != nil {
			fmt.Fprintln(out, "warning:", err)
		}
	}()

	k8s, err := client.New(cp.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	if err := p.step(fmt.Sprintf("Starting skiff-agent and containerd; waiting for node %s to be Ready", state.NodeName), func() error {
		return waitNodeReady(ctx, k8s, state.NodeName, o.readyWithin, agent.done, filepath.Join(c.logDir(), "agent.log"))
	}); err != nil {
		return err
	}

	n := &corev1alpha1.Node{}
	if err := k8s.Get(ctx, client.ObjectKey{Name: state.NodeName}, n); err == nil && n.Spec.PodCIDR != "" && n.Spec.PodCIDR != state.PodCIDR {
		p.say("warning: node %s has spec.podCIDR %s, but its pods get addresses of %s", state.NodeName, n.Spec.PodCIDR, state.PodCIDR)
	}
	self := selfPath()
	fmt.Fprintf(out, `
skiff is up: a single-node cluster, node %[1]s. In another terminal:

  export KUBECONFIG=%[2]s
  kubectl get snodes
  %[3]s image build skiff.local/hello:v1 --from-busybox --add examples/hello/www:/www --cmd "httpd -f -v -p 8080 -h /www"
  kubectl apply -f examples/hello/hello.yaml
  %[3]s rollout status deployment/hello
  curl http://$(kubectl get ssvc hello -o jsonpath='{.spec.clusterIP}')/

Logs are in %[4]s. Ctrl-C (or '%[3]s down') stops the cluster and keeps its
objects in %[5]s for the next 'skiff up'; '%[3]s down --purge' deletes everything.
`, state.NodeName, c.kubeconfig(), self, c.logDir(), dataDir)

	select {
	case <-ctx.Done():
		fmt.Fprintln(out)
		return nil
	case err := <-mgrDone:
		mgrDone <- err
		return fmt.Errorf("skiff-controller-manager stopped: %v (log: %s)", err, filepath.Join(c.logDir(), "manager.log"))
	case <-agent.done:
		return fmt.Errorf("skiff-agent exited; see %s", filepath.Join(c.logDir(), "agent.log"))
	}
}

// claimDataDir records this process in the data directory, or fails when
// another `skiff up` runs on it. The node name is kept across runs.
func claimDataDir(c cluster, nodeName string) (*upState, error) {
	prev, err := c.readState()
	if err == nil {
		if p := (process{PID: prev.PID, Start: startOf(prev)}); prev.PID > 0 && p.alive() && prev.PID != os.Getpid() {
			return nil, fmt.Errorf("skiff up already runs on %s (pid %d); stop it with `skiff down`", c.dir, prev.PID)
		}
		// A skiff up that was killed leaves etcd and kube-apiserver
		// running on this data directory: end them first.
		for _, p := range prev.Processes {
			if p.PID != prev.PID && p.alive() {
				fmt.Fprintf(os.Stderr, "Stopping %s (pid %d), left by an earlier skiff up\n", p.Name, p.PID)
				terminate(p, 15*time.Second)
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	saved := filepath.Join(c.dir, "node-name")
	if nodeName == "" {
		if b, err := os.ReadFile(saved); err == nil {
			nodeName = strings.TrimSpace(string(b))
		}
	}
	if nodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		nodeName = strings.ToLower(host)
	}
	if err := os.WriteFile(saved, []byte(nodeName+"\n"), 0o600); err != nil {
		return nil, err
	}
	s := &upState{PID: os.Getpid(), NodeName: nodeName, PodCIDR: upPodCIDR}
	s.Processes = []process{processOf(os.Getpid(), "skiff up")}
	return s, c.writeState(s)
}

// startOf returns the recorded start time of the `skiff up` process itself.
func startOf(s *upState) uint64 {
	for _, p := range s.Processes {
		if p.PID == s.PID {
			return p.Start
		}
	}
	return 0
}

type upLogs struct {
	controlPlane, manager, agent io.Writer
	files                        []*os.File
}

func openLogs(c cluster, verbose bool) (*upLogs, func(), error) {
	l := &upLogs{}
	open := func(name string) (io.Writer, error) {
		f, err := os.OpenFile(filepath.Join(c.logDir(), name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, err
		}
		l.files = append(l.files, f)
		if verbose {
			return io.MultiWriter(f, os.Stderr), nil
		}
		return f, nil
	}
	var err error
	if l.controlPlane, err = open("controlplane.log"); err != nil {
		return nil, nil, err
	}
	if l.manager, err = open("manager.log"); err != nil {
		return nil, nil, err
	}
	if l.agent, err = open("agent.log"); err != nil {
		return nil, nil, err
	}
	return l, func() {
		for _, f := range l.files {
			_ = f.Close()
		}
	}, nil
}

// writeUserKubeconfig copies the administrator's kubeconfig under names a
// user recognises (cluster, user and context "skiff").
func writeUserKubeconfig(from, to string) error {
	cfg, err := clientcmd.LoadFromFile(from)
	if err != nil {
		return err
	}
	cur := cfg.Contexts[cfg.CurrentContext]
	if cur == nil {
		return fmt.Errorf("kubeconfig %s has no current context", from)
	}
	cluster, user := cfg.Clusters[cur.Cluster], cfg.AuthInfos[cur.AuthInfo]
	if cluster == nil || user == nil {
		return fmt.Errorf("kubeconfig %s is incomplete", from)
	}
	cfg.Clusters = map[string]*clientcmdapi.Cluster{"skiff": cluster}
	cfg.AuthInfos = map[string]*clientcmdapi.AuthInfo{"skiff": user}
	cur.Cluster, cur.AuthInfo, cur.Namespace = "skiff", "skiff", ""
	cfg.Contexts = map[string]*clientcmdapi.Context{"skiff": cur}
	cfg.CurrentContext = "skiff"
	return clientcmd.WriteToFile(*cfg, to)
}

// writeNodeKubeconfig issues node's credentials with the administrator's
// config and writes them as a kubeconfig (mode 0600).
func writeNodeKubeconfig(ctx context.Context, admin *rest.Config, node, path string) error {
	raw, err := issueNodeKubeconfig(ctx, admin, node, nodeid.Options{})
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}

// issueNodeKubeconfig issues node's credentials through cfg's user (see
// nodeid.Issue) and returns a kubeconfig that uses them.
func issueNodeKubeconfig(ctx context.Context, cfg *rest.Config, node string, opts nodeid.Options) ([]byte, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	creds, err := nodeid.Issue(ctx, cs, node, opts)
	if err != nil {
		return nil, err
	}
	return creds.Kubeconfig(cfg)
}

// agentProcess is the skiff-agent process `skiff up` started.
type agentProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startAgent(c cluster, s *upState, bin, pause, clientCA string, log io.Writer) (*agentProcess, error) {
	cmd := exec.Command(bin,
		"--kubeconfig", c.nodeKubeconfig(),
		"--node-name", s.NodeName,
		"--root-dir", c.agentRoot(),
		"--containerd=managed",
		"--pause-binary", pause,
		"--pod-cidr", s.PodCIDR,
		"--service-cluster-ip-range", upServiceCIDR,
		// The agent API on a free port (the Node publishes it), so that it
		// never collides with a kubelet or another agent on this host.
		"--port=0", "--client-ca-file", clientCA,
		"-v=2",
	)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so that Ctrl-C reaches skiff up alone, which
	// stops the agent in order; and gone with skiff up if that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	a := &agentProcess{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(a.done) }()
	return a, nil
}

// stop ends the agent (by PID) and waits for it: it stops its pod workers,
// removes its nftables table and stops its containerd.
func (a *agentProcess) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(45 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// stopNodeContainers removes the node's pod sandboxes and containers
// through a containerd started on the node's root for that purpose, so that
// their network namespaces and addresses are released, then stops it and
// removes the bridge. Images stay; the agent recreates the pods' containers
// at the next `skiff up`, as a kubelet does after a reboot.
func stopNodeContainers(c cluster, s *upState, pause string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := os.Stat(filepath.Join(c.containerdDir(), "config.toml")); err != nil {
		return nil
	}
	if pause != "" {
		if _, err := containerd.Start(ctx, containerd.Options{
			RootDir: c.containerdDir(), PodCIDR: s.PodCIDR, PauseBinary: pause, NodeName: s.NodeName,
		}); err != nil {
			// Cleanup still ends shims and unmounts what it finds.
			fmt.Fprintln(os.Stderr, "warning: starting containerd to remove the pods:", err)
		}
	}
	return containerd.Cleanup(ctx, c.containerdDir(), s.NodeName)
}

// waitNodeReady waits until the Node reports Ready, the agent exits, or
// within passes.
func waitNodeReady(ctx context.Context, k8s client.Client, name string, within time.Duration, agentDone <-chan struct{}, agentLog string) error {
	deadline := time.After(within)
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	last := "the node has not registered yet"
	for {
		n := &corev1alpha1.Node{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, n); err == nil {
			c := meta.FindStatusCondition(n.Status.Conditions, conditions.Ready)
			if c != nil && c.Status == "True" {
				return nil
			}
			if c != nil {
				last = fmt.Sprintf("Ready is %s: %s", c.Status, c.Message)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-agentDone:
			return fmt.Errorf("skiff-agent exited before node %s was Ready; see %s", name, agentLog)
		case <-deadline:
			return fmt.Errorf("node %s not Ready within %s (%s); see %s", name, within, last, agentLog)
		case <-t.C:
		}
	}
}

// selfPath is how the user can run this skiff binary again: relative to the
// working directory when it lies below it (bin/skiff), else its full path.
func selfPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "skiff"
	}
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, exe); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return exe
}
