package containerd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// PauseImage is the sandbox image a managed containerd uses.
const PauseImage = "skiff.local/pause:v1"

// DefaultCNIBinDir is where Debian's containernetworking-plugins live.
const DefaultCNIBinDir = "/usr/lib/cni"

// Options configure a managed containerd.
type Options struct {
	// RootDir holds the configuration, socket, root and state directories.
	RootDir string
	// PodCIDR is the node's pod network, served by a CNI bridge.
	PodCIDR string
	// PauseBinary is the static pause program of the sandbox image.
	PauseBinary string
	// NodeName names the bridge and the CNI network, so that several
	// managed containerds can share a host.
	NodeName string
	// CNIBinDir defaults to DefaultCNIBinDir.
	CNIBinDir string
	// InsecureRegistries are host:port names reached with plain HTTP;
	// 127.0.0.1:5000 and localhost:5000 are always included.
	InsecureRegistries []string
	// Log receives containerd's output; nil means <RootDir>/containerd.log.
	Log *os.File
}

// Containerd is a containerd process this package started, or found
// running from an earlier start with the same RootDir.
type Containerd struct {
	opts    Options
	address string

	mu      sync.Mutex
	cmd     *exec.Cmd
	pid     int
	done    chan struct{} // closed when a process this package started exits
	stopped bool
}

// Endpoint is the CRI endpoint of the managed containerd.
func (c *Containerd) Endpoint() string { return "unix://" + c.address }

// Address is the containerd socket path.
func (c *Containerd) Address() string { return c.address }

// PID is the containerd process ID.
func (c *Containerd) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pid
}

// BridgeName is the CNI bridge of a node: short, since Linux allows 15 bytes.
func BridgeName(node string) string {
	h := fnv.New32a()
	_, _ = h.Write([]byte(node))
	return fmt.Sprintf("skf%08x", h.Sum32())
}

// NodePodCIDR returns the Node's spec.podCIDR, or def when the Node does not
// exist yet or has none.
func NodePodCIDR(ctx context.Context, cfg *rest.Config, node, def string) (string, error) {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return "", err
	}
	n := &corev1alpha1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: node}, n); err != nil {
		if apierrors.IsNotFound(err) {
			return def, nil
		}
		return "", fmt.Errorf("reading node %s: %w", node, err)
	}
	if n.Spec.PodCIDR != "" {
		return n.Spec.PodCIDR, nil
	}
	return def, nil
}

func (o Options) paths() (cfg, sock, root, state, cniConf, certs string) {
	return filepath.Join(o.RootDir, "config.toml"), filepath.Join(o.RootDir, "containerd.sock"),
		filepath.Join(o.RootDir, "root"), filepath.Join(o.RootDir, "state"),
		filepath.Join(o.RootDir, "cni", "net.d"), filepath.Join(o.RootDir, "certs.d")
}

// Config renders the containerd configuration.
func Config(o Options) string {
	_, sock, root, state, cniConf, certs := o.paths()
	bin := o.CNIBinDir
	if bin == "" {
		bin = DefaultCNIBinDir
	}
	return fmt.Sprintf(`version = 2
root = %q
state = %q
oom_score = 0

[grpc]
  address = %q

[ttrpc]
  address = %q

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = %q
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = %q
    restrict_oom_score_adj = true
    netns_mounts_under_state_dir = true
    enable_selinux = false
    disable_apparmor = true
    max_container_log_line_size = 16384
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = %q
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = %q
      conf_dir = %q
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = %q
`, root, state, sock, sock+".ttrpc", filepath.Join(o.RootDir, "opt"), PauseImage, filepath.Join(o.RootDir, "runc"), bin, cniConf, certs)
}

// CNIConfig renders the bridge network of the node's pod CIDR: a bridge
// with host-local addresses (kept under RootDir), portmap for hostPort, and
// no masquerading, so that nothing is rewritten on the host's way out.
func CNIConfig(o Options) ([]byte, error) {
	_, ipnet, err := net.ParseCIDR(o.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("parsing pod CIDR %q: %w", o.PodCIDR, err)
	}
	gw := make(net.IP, len(ipnet.IP.To4()))
	copy(gw, ipnet.IP.To4())
	gw[3]++
	return json.MarshalIndent(map[string]any{
		"cniVersion": "0.4.0",
		"name":       "skiff-" + BridgeName(o.NodeName),
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": BridgeName(o.NodeName), "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": filepath.Join(o.RootDir, "cni", "ipam"),
					"ranges": [][]map[string]string{{{"subnet": ipnet.String(), "gateway": gw.String()}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}, "", "  ")
}

func hostsToml(host string) string {
	return fmt.Sprintf("server = \"http://%s\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n", host, host)
}

// Start writes the configuration, starts containerd (or reuses the one an
// earlier Start left running on the same RootDir), waits for its socket and
// makes sure the sandbox image is present.
func Start(ctx context.Context, o Options) (*Containerd, error) {
	cfgPath, sock, _, _, cniConf, certs := o.paths()
	if len(sock) > 100 {
		return nil, fmt.Errorf("containerd socket path %s is too long for a unix socket; use a shorter --root-dir", sock)
	}
	for _, d := range []string{o.RootDir, cniConf, certs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(cfgPath, []byte(Config(o)), 0o644); err != nil {
		return nil, err
	}
	cni, err := CNIConfig(o)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cniConf, "10-skiff.conflist"), cni, 0o644); err != nil {
		return nil, err
	}
	for _, h := range append([]string{"127.0.0.1:5000", "localhost:5000"}, o.InsecureRegistries...) {
		if err := os.MkdirAll(filepath.Join(certs, h), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(certs, h, "hosts.toml"), []byte(hostsToml(h)), 0o644); err != nil {
			return nil, err
		}
	}
	c := &Containerd{opts: o, address: sock}
	if pid, ok := runningPID(c.pidFile()); ok && serving(sock) {
		// A restarted agent keeps the containerd (and the containers) it had.
		c.pid = pid
	} else if err := c.launch(ctx); err != nil {
		return nil, err
	}
	if err := c.ensurePauseImage(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Containerd) pidFile() string { return filepath.Join(c.opts.RootDir, "containerd.pid") }

// launch starts the containerd process and waits for its socket.
func (c *Containerd) launch(ctx context.Context) error {
	cfgPath, sock, _, _, _, _ := c.opts.paths()
	logf := c.opts.Log
	if logf == nil {
		var err error
		if logf, err = os.OpenFile(filepath.Join(c.opts.RootDir, "containerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
	}
	_ = os.Remove(sock)
	cmd := exec.Command("containerd", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C meant for the agent does not kill it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting containerd: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		if logf != c.opts.Log {
			_ = logf.Close()
		}
		close(done)
	}()
	c.mu.Lock()
	c.cmd, c.pid, c.done = cmd, cmd.Process.Pid, done
	c.mu.Unlock()
	if err := os.WriteFile(c.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for !serving(sock) {
		select {
		case <-done:
			return fmt.Errorf("containerd exited at start; see %s", filepath.Join(c.opts.RootDir, "containerd.log"))
		case <-ctx.Done():
			c.Stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.Stop()
			return errors.New("containerd did not open its socket within 30s")
		}
	}
	return nil
}

// alive tells whether the containerd process still runs.
func (c *Containerd) alive() bool {
	c.mu.Lock()
	pid, done := c.pid, c.done
	c.mu.Unlock()
	if done != nil {
		select {
		case <-done:
			return false
		default:
			return true
		}
	}
	_, ok := runningPID(c.pidFile())
	return ok && pid > 0
}

// Supervise starts containerd again whenever it dies, until ctx ends or
// Stop is called. Running containers survive in their shims, and the CRI
// client reconnects by itself.
func (c *Containerd) Supervise(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		stopped := c.stopped
		c.mu.Unlock()
		if stopped {
			return
		}
		if c.alive() {
			continue
		}
		log.Info("Restarting containerd, which exited")
		if err := c.launch(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Restarting containerd failed")
		}
	}
}

func runningPID(pidFile string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil || strings.TrimSpace(string(comm)) != "containerd" {
		return 0, false
	}
	return pid, true
}

func serving(sock string) bool {
	conn, err := net.DialTimeout("unix", sock, 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// ensurePauseImage imports the sandbox image built from the pause binary
// unless it is there already.
func (c *Containerd) ensurePauseImage(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", c.address, "--namespace", "k8s.io", "images", "check", "name=="+PauseImage).CombinedOutput()
	if err == nil && bytes.Contains(out, []byte(PauseImage)) {
		return nil
	}
	bin, err := os.ReadFile(c.opts.PauseBinary)
	if err != nil {
		return fmt.Errorf("reading the pause binary (build it with CGO_ENABLED=0 go build -o skiff-pause ./cmd/agent/pause): %w", err)
	}
	archive := filepath.Join(c.opts.RootDir, "pause.tar")
	f, err := os.Create(archive)
	if err != nil {
		return err
	}
	err = BuildImage(f, PauseImage, []File{{Path: "pause", Mode: 0o755, Data: bin}}, ImageConfig{Entrypoint: []string{"/pause"}})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("building the pause image: %w", err)
	}
	defer os.Remove(archive)
	return ImportImage(ctx, c.address, archive)
}

// Stop ends the containerd process this package started (by its PID) and
// waits for it. Containers keep running in their shims, as with any
// containerd restart; use Cleanup to remove them.
func (c *Containerd) Stop() {
	c.mu.Lock()
	c.stopped = true
	pid, done := c.pid, c.done
	c.pid = 0
	c.mu.Unlock()
	if pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if done != nil {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-done
		}
	} else {
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	_ = os.Remove(c.pidFile())
}
