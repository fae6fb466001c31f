package multinode_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/imagebuild"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/internal/mounts"
	"github.com/skiff-dev/skiff/test/utils"
)

// The multi-node harness. Everything it creates on the host is named with
// harnessPrefix, so that a run cleans what a crashed earlier run left
// (CleanupLeftovers): network namespaces skmn-<id>-<i>, the bridge
// skmn<id> and veths skmn<id>v<i>, and the work directory /tmp/skmn-<id>
// that holds every node's root directory (containerd state, mounts).
const harnessPrefix = "skmn"

// linkPrefix starts the addresses of the cluster's link, 10.251.<random>.0/24;
// the API server listens on .1.
const linkPrefix = "10.251."

// BusyboxImage is imported into every node's containerd; its tag makes the
// default pull policy IfNotPresent.
const BusyboxImage = "skiff.local/busybox:e2e"

// ClusterOptions configure StartCluster.
type ClusterOptions struct {
	// Nodes is how many nodes to start; zero means 3.
	Nodes int
	// Manager configures skiff-controller-manager (in this process);
	// ClusterCIDR is set by the harness.
	Manager manager.Options
	// NodeConfig returns the client configuration an agent uses; nil means
	// the cluster administrator's.
	NodeConfig func(c *Cluster, nodeName string) (*rest.Config, error)
	// AgentArgs are added to every agent's command line.
	AgentArgs []string
	// Log receives the harness' progress; nil discards it.
	Log io.Writer
}

// Cluster is a control plane on a test bridge and nodes in network
// namespaces joined to it, each with its own managed containerd, CNI
// bridge and skiff-agent; skiff-controller-manager runs in this process.
type Cluster struct {
	// ID names everything of this run.
	ID string
	// WorkDir holds the binaries, kubeconfigs and node root directories.
	WorkDir string
	// Bridge is the test bridge in the host's network namespace.
	Bridge string
	// Gateway is the bridge's address: the API server listens on it.
	Gateway netip.Addr
	// Subnet is the link the nodes share.
	Subnet netip.Prefix
	// ClusterCIDR is where the nodes' pod CIDRs come from.
	ClusterCIDR string
	// ControlPlane is etcd, kube-apiserver (on Gateway) and the garbage collector.
	ControlPlane *controlplane.ControlPlane
	// Client is a cluster administrator's uncached client.
	Client client.WithWatch
	// Manager is skiff-controller-manager.
	Manager *utils.Manager
	// Nodes are the nodes, in start order.
	Nodes []*Node

	opts    ClusterOptions
	binDir  string
	image   string // busybox image archive
	cleanup []func()
}

// Node is one node of the cluster.
type Node struct {
	// Name is the Node's name.
	Name string
	// NetNS is the network namespace (/run/netns/<NetNS>).
	NetNS string
	// IP is the node's InternalIP on the cluster's link.
	IP netip.Addr
	// RootDir is the agent's --root-dir.
	RootDir string
	// Veth is the host end of the node's link, on the cluster's bridge.
	Veth string
	// Kubeconfig is what the agent authenticates with.
	Kubeconfig string
	// Runtime is a CRI client of the node's containerd.
	Runtime cri.Runtime

	cluster *Cluster
	index   int
	agent   *exec.Cmd
	done    chan struct{}
	killed  bool
}

// StartCluster cleans what an earlier run left, then starts the control
// plane, the manager and the nodes, and returns once every Node is Ready
// with a pod CIDR and the busybox image is on every node. The caller must
// call Stop, also when StartCluster fails (it stops what it started).
func StartCluster(ctx context.Context, opts ClusterOptions) (c *Cluster, err error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	CleanupLeftovers(opts.Log)
	octet := 1 + mathrand.IntN(254)
	c = &Cluster{
		ID:          strings.ToLower(rand.String(4)),
		Gateway:     netip.MustParseAddr(fmt.Sprintf("%s%d.1", linkPrefix, octet)),
		Subnet:      netip.MustParsePrefix(fmt.Sprintf("%s%d.0/24", linkPrefix, octet)),
		ClusterCIDR: "10.252.0.0/16",
		opts:        opts,
	}
	c.Bridge = harnessPrefix + c.ID
	c.WorkDir = filepath.Join("/tmp", harnessPrefix+"-"+c.ID)
	c.binDir = filepath.Join(c.WorkDir, "bin")
	if err := os.MkdirAll(c.binDir, 0o755); err != nil {
		return c, err
	}
	c.defer_(func() { _ = os.RemoveAll(c.WorkDir) })

	c.logf("Building skiff-agent and skiff-pause")
	if err := c.build(); err != nil {
		return c, err
	}
	c.logf("Creating bridge %s with %s", c.Bridge, c.Gateway)
	c.defer_(func() { _ = ipCmd("link", "del", c.Bridge) })
	for _, args := range [][]string{
		{"link", "add", c.Bridge, "type", "bridge"},
		{"addr", "add", netip.PrefixFrom(c.Gateway, c.Subnet.Bits()).String(), "dev", c.Bridge},
		{"link", "set", c.Bridge, "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return c, err
		}
	}

	c.logf("Starting the control plane on %s", c.Gateway)
	cpOpts := controlplane.Options{Address: c.Gateway.String()}
	cp, cl, err := utils.StartControlPlane(ctx, cpOpts, opts.Log)
	if err != nil {
		return c, err
	}
	c.ControlPlane, c.Client = cp, cl
	c.defer_(func() { _ = cp.Stop() })

	c.logf("Starting skiff-controller-manager")
	mopts := opts.Manager
	mopts.ClusterCIDR = c.ClusterCIDR
	if c.Manager, err = utils.StartManager(ctx, cp.Config, mopts); err != nil {
		return c, err
	}
	c.defer_(func() { _ = c.Manager.Stop() })

	files, cfg, err := imagebuild.Busybox()
	if err != nil {
		return c, err
	}
	c.image = filepath.Join(c.WorkDir, "busybox.tar")
	f, err := os.Create(c.image)
	if err != nil {
		return c, err
	}
	err = containerd.BuildImage(f, BusyboxImage, files, cfg)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return c, err
	}

	for i := range opts.Nodes {
		if _, err := c.AddNode(ctx, fmt.Sprintf("mn-%s-%d", c.ID, i)); err != nil {
			return c, err
		}
	}
	for _, n := range c.Nodes {
		if err := n.WaitReady(ctx, 2*time.Minute); err != nil {
			return c, err
		}
		if err := containerd.ImportImage(ctx, n.socket(), c.image); err != nil {
			return c, fmt.Errorf("importing busybox into node %s: %w", n.Name, err)
		}
	}
	return c, nil
}

// defer_ registers a cleanup step; Stop runs them in reverse order.
func (c *Cluster) defer_(f func()) { c.cleanup = append(c.cleanup, f) }

func (c *Cluster) logf(format string, args ...any) {
	fmt.Fprintf(c.opts.Log, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
}

// Stop removes every node (agent, containerd, containers, mounts, network
// namespace), then the manager, the control plane, the bridge and the work
// directory. It keeps the agents' logs in /tmp/skiff-e2e-multinode-logs.
func (c *Cluster) Stop() {
	keep := filepath.Join(os.TempDir(), "skiff-e2e-multinode-logs")
	_ = os.RemoveAll(keep)
	_ = os.MkdirAll(keep, 0o755)
	for _, n := range c.Nodes {
		if b, err := os.ReadFile(filepath.Join(n.RootDir, "agent.log")); err == nil {
			_ = os.WriteFile(filepath.Join(keep, n.Name+".log"), b, 0o644)
		}
		if err := n.Kill(); err != nil {
			c.logf("Removing node %s: %v", n.Name, err)
		}
	}
	for i := len(c.cleanup) - 1; i >= 0; i-- {
		c.cleanup[i]()
	}
	c.cleanup = nil
}

// agentLogLines is how much of each agent's log PrintAgentLogs prints.
const agentLogLines = 150

// PrintAgentLogs writes the end of every node's agent log (its stdout and
// stderr, <RootDir>/agent.log) to w, with the lines that report an error
// or a refusal first.
func (c *Cluster) PrintAgentLogs(w io.Writer) {
	for _, n := range c.Nodes {
		b, err := os.ReadFile(filepath.Join(n.RootDir, "agent.log"))
		if err != nil {
			fmt.Fprintf(w, "\n==== agent log of %s: %v\n", n.Name, err)
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		var problems []string
		for _, l := range lines {
			if strings.Contains(l, "forbidden") || strings.Contains(l, "Forbidden") || strings.Contains(l, "denied") ||
				strings.HasPrefix(l, "E") || strings.Contains(l, "\"level\":\"error\"") || strings.Contains(l, "ERROR") {
				problems = append(problems, l)
			}
		}
		if len(problems) > agentLogLines {
			problems = problems[len(problems)-agentLogLines:]
		}
		fmt.Fprintf(w, "\n==== agent log of %s (%s): %d errors or refusals\n%s\n", n.Name, filepath.Join(n.RootDir, "agent.log"), len(problems), strings.Join(problems, "\n"))
		if len(lines) > agentLogLines {
			lines = lines[len(lines)-agentLogLines:]
		}
		fmt.Fprintf(w, "==== last %d lines of the agent log of %s\n%s\n", len(lines), n.Name, strings.Join(lines, "\n"))
	}
}

func (c *Cluster) build() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	for _, b := range []struct{ out, pkg, cgo string }{{"skiff-agent", "./cmd/agent", "1"}, {"skiff-pause", "./cmd/agent/pause", "0"}} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(c.binDir, b.out), b.pkg)
		cmd.Dir = root
		// The pause binary runs alone in the sandbox image: it must be static.
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+b.cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// AddNode creates a node: its network namespace, joined to the bridge by a
// veth pair (eth0 inside), and its agent with a managed containerd. It
// does not wait for the Node to be Ready (see WaitReady, which also
// connects Runtime).
func (c *Cluster) AddNode(ctx context.Context, name string) (*Node, error) {
	i := len(c.Nodes)
	n := &Node{
		Name:    name,
		NetNS:   fmt.Sprintf("%s-%s-%d", harnessPrefix, c.ID, i),
		IP:      netip.AddrFrom4([4]byte{c.Subnet.Addr().As4()[0], c.Subnet.Addr().As4()[1], c.Subnet.Addr().As4()[2], byte(10 + i)}),
		RootDir: filepath.Join(c.WorkDir, fmt.Sprintf("n%d", i)),
		Veth:    fmt.Sprintf("%s%sv%d", harnessPrefix, c.ID, i),
		cluster: c,
		index:   i,
	}
	c.Nodes = append(c.Nodes, n)
	c.logf("Creating node %s in network namespace %s at %s", n.Name, n.NetNS, n.IP)
	if err := os.MkdirAll(n.RootDir, 0o755); err != nil {
		return n, err
	}
	for _, args := range [][]string{
		{"netns", "add", n.NetNS},
		{"link", "add", n.Veth, "type", "veth", "peer", "name", "eth0", "netns", n.NetNS},
		{"link", "set", n.Veth, "master", c.Bridge},
		{"link", "set", n.Veth, "up"},
		{"-n", n.NetNS, "link", "set", "lo", "up"},
		{"-n", n.NetNS, "addr", "add", netip.PrefixFrom(n.IP, c.Subnet.Bits()).String(), "dev", "eth0"},
		{"-n", n.NetNS, "link", "set", "eth0", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return n, err
		}
	}
	cfg := rest.CopyConfig(c.ControlPlane.Config)
	if c.opts.NodeConfig != nil {
		var err error
		if cfg, err = c.opts.NodeConfig(c, n.Name); err != nil {
			return n, err
		}
	}
	n.Kubeconfig = filepath.Join(n.RootDir, "kubeconfig")
	if err := writeKubeconfig(n.Kubeconfig, cfg); err != nil {
		return n, err
	}
	return n, n.StartAgent()
}

// LiveNodes are the nodes that Kill has not removed.
func (c *Cluster) LiveNodes() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if !n.killed {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

func (n *Node) socket() string { return filepath.Join(n.RootDir, "containerd", "containerd.sock") }

// StartAgent starts the node's skiff-agent inside its network namespace
// (and in the host's mount namespace, so that the harness sees and removes
// the mounts of its containerd). Its log goes to <RootDir>/agent.log.
func (n *Node) StartAgent() error {
	logf, err := os.OpenFile(filepath.Join(n.RootDir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	bin := n.cluster.binDir
	args := []string{"--net=/run/netns/" + n.NetNS, "--", filepath.Join(bin, "skiff-agent"),
		"--kubeconfig", n.Kubeconfig, "--node-name", n.Name, "--root-dir", n.RootDir,
		"--containerd=managed", "--pause-binary", filepath.Join(bin, "skiff-pause"),
		"--node-ip", n.IP.String(), "--wait-for-pod-cidr", "--port=0", "-v=2"}
	args = append(args, n.cluster.opts.AgentArgs...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group; it dies with the test process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("starting the agent of %s: %w", n.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	n.agent, n.done, n.killed = cmd, done, false
	return nil
}

// StopAgent stops the agent with sig (SIGTERM: a clean stop, which removes
// its routes and service rules; SIGKILL: a crash) and waits for it. Its
// containerd and containers keep running.
func (n *Node) StopAgent(sig syscall.Signal) {
	if n.agent == nil {
		return
	}
	_ = n.agent.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		_ = n.agent.Process.Kill()
		<-n.done
	}
	n.agent = nil
}

// AgentRunning tells whether the agent process runs.
func (n *Node) AgentRunning() bool {
	if n.agent == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// WaitReady waits until the Node is Ready and has a pod CIDR, and connects
// Runtime to the node's containerd.
func (n *Node) WaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if !n.AgentRunning() {
			return fmt.Errorf("the agent of %s exited; see %s", n.Name, filepath.Join(n.RootDir, "agent.log"))
		}
		node := &corev1alpha1.Node{}
		err := n.cluster.Client.Get(ctx, client.ObjectKey{Name: n.Name}, node)
		switch {
		case err != nil:
			last = err.Error()
		case node.Spec.PodCIDR == "":
			last = "no pod CIDR"
		case !meta.IsStatusConditionTrue(node.Status.Conditions, conditions.Ready):
			last = "not Ready"
		default:
			if n.Runtime == nil {
				// The agent starts its containerd once the Node has a pod CIDR.
				if n.Runtime, err = cri.Connect(ctx, "unix://"+n.socket(), 10*time.Second); err != nil {
					return fmt.Errorf("connecting to the containerd of %s: %w", n.Name, err)
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("node %s not ready within %s: %s", n.Name, timeout, last)
}

// Kill removes the node as a lost machine goes: its agent is killed (no
// clean stop, so its Node, Lease and pods stay in the API as they are), its
// containers, containerd and mounts are removed, and its network namespace
// is deleted, which takes its end of the link and every route and nftables
// table in it. The Node object stays. Kill is idempotent.
func (n *Node) Kill() error {
	if n.killed {
		return nil
	}
	n.StopAgent(syscall.SIGKILL)
	err := removeNode(n.NetNS, n.RootDir, n.Name)
	n.killed = true
	return err
}

// Killed tells whether Kill ran.
func (n *Node) Killed() bool { return n.killed }

// partitionTable is the nftables table (in the node's namespace) that
// Partition adds and Heal removes.
const partitionTable = "skiff-e2e-partition"

// Partition cuts the node off the API server: its packets to and from the
// API server's address and port are dropped (not refused: a partition
// gives no answer), so its agent can neither renew its Lease nor see
// changes. Pod traffic between nodes goes on. Heal undoes it.
func (n *Node) Partition() error {
	host, port, err := n.cluster.apiAddress()
	if err != nil {
		return err
	}
	rules := fmt.Sprintf(`table ip %[1]s {
	chain output { type filter hook output priority -50; ip daddr %[2]s tcp dport %[3]s drop; }
	chain input { type filter hook input priority -50; ip saddr %[2]s tcp sport %[3]s drop; }
}
`, partitionTable, host, port)
	_ = n.Heal()
	return n.runInput(rules, "nft", "-f", "-")
}

// Heal ends a Partition.
func (n *Node) Heal() error {
	out, err := n.Output("nft", "delete", "table", "ip", partitionTable)
	if err != nil && !strings.Contains(out, "No such file") {
		return fmt.Errorf("removing the partition of %s: %v: %s", n.Name, err, out)
	}
	return nil
}

// Output runs a command inside the node's network namespace and returns
// its combined output.
func (n *Node) Output(name string, args ...string) (string, error) {
	out, err := exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.NetNS, "--", name}, args...)...).CombinedOutput()
	return string(out), err
}

func (n *Node) runInput(stdin, name string, args ...string) error {
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.NetNS, "--", name}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %v in %s: %v: %s", name, args, n.NetNS, err, out)
	}
	return nil
}

// Exec runs a command in a container of the node and returns its output.
func (n *Node) Exec(ctx context.Context, containerID string, cmd ...string) (string, error) {
	out, stderr, err := n.Runtime.ExecSync(ctx, containerID, cmd, 15*time.Second)
	if err != nil {
		return string(out), fmt.Errorf("%v: %s%s", err, out, stderr)
	}
	return string(out), nil
}

// apiAddress is the API server's host and port.
func (c *Cluster) apiAddress() (string, string, error) {
	u, err := url.Parse(c.ControlPlane.Config.Host)
	if err != nil || u.Port() == "" {
		return "", "", fmt.Errorf("no host and port in the API server address %q: %v", c.ControlPlane.Config.Host, err)
	}
	return u.Hostname(), u.Port(), nil
}

// removeNode removes what a node left on the host, whether its agent
// still runs or not: the processes in its network namespace, its
// containers (by CRI while its containerd serves, then any process whose
// root is under its root directory), its mounts, the namespace and the
// root directory.
func removeNode(netns, rootDir, name string) error {
	var errs []error
	var nsIno uint64
	if netns != "" {
		nsIno = inode("/run/netns/" + netns)
	}
	// Agents first, so that nothing restarts what goes.
	killWhere(func(pid int) bool { return nsIno != 0 && procNetns(pid) == nsIno && comm(pid) == "skiff-agent" })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := containerd.Cleanup(ctx, filepath.Join(rootDir, "containerd"), name); err != nil {
		errs = append(errs, err)
	}
	killWhere(func(pid int) bool {
		return nsIno != 0 && procNetns(pid) == nsIno || strings.HasPrefix(procRoot(pid), rootDir+"/")
	})
	ms, _ := mounts.Under(rootDir)
	for _, m := range ms {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	if nsIno != 0 {
		if err := ipCmd("netns", "del", netns); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(rootDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// CleanupLeftovers removes what a crashed earlier run of this suite left:
// its nodes (processes, containers, mounts, namespaces), bridges, veths and
// work directories. It runs under the host lock, so nothing it finds
// belongs to a run in progress.
func CleanupLeftovers(log io.Writer) {
	dirs, _ := filepath.Glob(filepath.Join("/tmp", harnessPrefix+"-*"))
	nss, _ := filepath.Glob("/run/netns/" + harnessPrefix + "-*")
	for _, ns := range nss {
		// skmn-<id>-<i> lives in /tmp/skmn-<id>/n<i>.
		base := filepath.Base(ns)
		parts := strings.Split(base, "-")
		if len(parts) != 3 {
			continue
		}
		fmt.Fprintf(log, "Removing node %s left by an earlier run\n", base)
		root := filepath.Join("/tmp", parts[0]+"-"+parts[1], "n"+parts[2])
		if err := removeNode(base, root, fmt.Sprintf("mn-%s-%s", parts[1], parts[2])); err != nil {
			fmt.Fprintf(log, "Removing node %s: %v\n", base, err)
		}
	}
	for _, d := range dirs {
		nodes, _ := filepath.Glob(filepath.Join(d, "n*"))
		for _, root := range nodes {
			_ = removeNode("", root, "")
		}
		fmt.Fprintf(log, "Removing %s left by an earlier run\n", d)
		_ = os.RemoveAll(d)
	}
	links, _ := filepath.Glob("/sys/class/net/" + harnessPrefix + "*")
	for _, l := range links {
		_ = ipCmd("link", "del", filepath.Base(l))
	}
	removeControlPlaneLeftovers(log)
}

// removeControlPlaneLeftovers ends the kube-apiserver of a crashed run
// (envtest's processes outlive a killed test binary), found by its bind
// address on the harness' link range, and the etcd it used, found by its
// client URL, and removes their envtest directories.
func removeControlPlaneLeftovers(log io.Writer) {
	var etcdURLs, dirs []string
	killWhere(func(pid int) bool {
		args := cmdline(pid)
		if len(args) == 0 || filepath.Base(args[0]) != "kube-apiserver" || !hasArgPrefix(args, "--bind-address="+linkPrefix) {
			return false
		}
		for _, a := range args {
			if v, ok := strings.CutPrefix(a, "--etcd-servers="); ok {
				etcdURLs = append(etcdURLs, v)
			}
			if v, ok := strings.CutPrefix(a, "--cert-dir="); ok {
				dirs = append(dirs, v)
			}
		}
		fmt.Fprintf(log, "Ending kube-apiserver %d left by an earlier run\n", pid)
		return true
	})
	for _, url := range etcdURLs {
		killWhere(func(pid int) bool {
			args := cmdline(pid)
			if len(args) == 0 || filepath.Base(args[0]) != "etcd" || !hasArgPrefix(args, "--listen-client-urls="+url) {
				return false
			}
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, "--data-dir="); ok {
					dirs = append(dirs, v)
				}
			}
			fmt.Fprintf(log, "Ending etcd %d left by an earlier run\n", pid)
			return true
		})
	}
	for _, d := range dirs {
		if strings.HasPrefix(d, os.TempDir()+"/k8s_test_framework_") {
			_ = os.RemoveAll(d)
		}
	}
}

func cmdline(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

func hasArgPrefix(args []string, prefix string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	return false
}

// killWhere SIGKILLs every process for which match is true.
func killWhere(match func(pid int) bool) {
	for range 3 {
		found := false
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if match(pid) {
				found = true
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if !found {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func inode(path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

func procNetns(pid int) uint64 { return inode(fmt.Sprintf("/proc/%d/ns/net", pid)) }

func procRoot(pid int) string {
	r, _ := os.Readlink(fmt.Sprintf("/proc/%d/root", pid))
	return r
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func ipCmd(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// writeKubeconfig writes cfg (certificate or token credentials) as a
// kubeconfig file.
func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["skiff"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["node"] = &clientcmdapi.AuthInfo{
		ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData, Token: cfg.BearerToken,
	}
	kc.Contexts["skiff"] = &clientcmdapi.Context{Cluster: "skiff", AuthInfo: "node"}
	kc.CurrentContext = "skiff"
	return clientcmd.WriteToFile(*kc, path)
}
