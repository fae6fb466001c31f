package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/agent/containerd"
	"github.com/skiff-dev/skiff/internal/controlplane"
)

// cluster is the layout of a `skiff up` data directory.
type cluster struct{ dir string }

func (c cluster) kubeconfig() string    { return filepath.Join(c.dir, "kubeconfig") }
func (c cluster) etcdDir() string       { return filepath.Join(c.dir, "etcd") }
func (c cluster) controlDir() string    { return filepath.Join(c.dir, "controlplane") }
func (c cluster) agentRoot() string     { return filepath.Join(c.dir, "agent") }
func (c cluster) containerdDir() string { return filepath.Join(c.agentRoot(), "containerd") }
func (c cluster) containerdSock() string {
	return filepath.Join(c.containerdDir(), "containerd.sock")
}

// nodeKubeconfig holds the agent's node identity (`skiff node credentials`).
func (c cluster) nodeKubeconfig() string { return filepath.Join(c.dir, "node.kubeconfig") }
func (c cluster) logDir() string         { return filepath.Join(c.dir, "logs") }
func (c cluster) statePath() string      { return filepath.Join(c.dir, "up.json") }

// upState is what a running `skiff up` records in its data directory, so
// that `skiff down` finds it and, after a crash, what it left running.
type upState struct {
	// PID is the `skiff up` process.
	PID int `json:"pid"`
	// NodeName and PodCIDR are the node's, for cleaning up its bridge.
	NodeName string `json:"nodeName"`
	PodCIDR  string `json:"podCIDR"`
	// Processes are the children `skiff up` started (etcd,
	// kube-apiserver, kube-controller-manager, skiff-agent).
	Processes []process `json:"processes,omitempty"`
}

// process names a process by PID and start time, so a recycled PID is
// never mistaken for it.
type process struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Name  string `json:"name"`
}

func (c cluster) readState() (*upState, error) {
	b, err := os.ReadFile(c.statePath())
	if err != nil {
		return nil, err
	}
	s := &upState{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("reading %s: %w", c.statePath(), err)
	}
	return s, nil
}

func (c cluster) writeState(s *upState) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.statePath() + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, c.statePath())
}

// procStart returns the start time of pid (clock ticks since boot), or
// false when no such process runs.
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces: fields count from its closing paren.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// Field 22 of stat is starttime; f[0] is field 3.
	if len(f) < 20 {
		return 0, false
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	if len(f) > 0 && f[0] == "Z" {
		return 0, false
	}
	return v, true
}

// alive tells whether p still runs (same PID, same start time).
func (p process) alive() bool {
	start, ok := procStart(p.PID)
	return ok && start == p.Start
}

func processOf(pid int, name string) process {
	start, _ := procStart(pid)
	return process{PID: pid, Start: start, Name: name}
}

// childProcesses lists the running children of this process.
func childProcesses() []process {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		j := strings.IndexByte(s, '(')
		if i < 0 || j < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[1] != strconv.Itoa(self) {
			continue
		}
		out = append(out, processOf(pid, s[j+1:i]))
	}
	return out
}

// terminate sends SIGTERM to p and waits up to grace for it to end, then
// kills it.
func terminate(p process, grace time.Duration) {
	if !p.alive() {
		return
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
}

// prerequisite is a program `skiff up` needs and the Debian package that
// has it.
type prerequisite struct {
	what    string // a command on PATH, or an absolute path
	pkg     string
	purpose string
}

var prerequisites = []prerequisite{
	{"containerd", "containerd", "runs the node's containers"},
	{"ctr", "containerd", "imports images"},
	{"runc", "runc", "runs the node's containers"},
	{filepath.Join(containerd.DefaultCNIBinDir, "bridge"), "containernetworking-plugins", "pod network"},
	{filepath.Join(containerd.DefaultCNIBinDir, "host-local"), "containernetworking-plugins", "pod addresses"},
	{filepath.Join(containerd.DefaultCNIBinDir, "portmap"), "containernetworking-plugins", "hostPort"},
	{"nft", "nftables", "the service proxy"},
	{"ip", "iproute2", "network cleanup"},
}

// checkPrerequisites names what is missing for a local cluster, and how to
// install it. lookPath finds commands (exec.LookPath), euid is the
// effective user ID.
func checkPrerequisites(lookPath func(string) (string, error), euid int) error {
	var problems []string
	if euid != 0 {
		problems = append(problems, "skiff up runs containers (containerd, mounts, network namespaces, nftables) and must run as root: sudo skiff up")
	}
	var missing, pkgs []string
	seen := map[string]bool{}
	for _, p := range prerequisites {
		var err error
		if filepath.IsAbs(p.what) {
			_, err = os.Stat(p.what)
		} else if _, err = lookPath(p.what); err != nil {
			// Debian keeps some in /usr/sbin, which a user's PATH may lack.
			_, err = os.Stat(filepath.Join("/usr/sbin", p.what))
		}
		if err == nil {
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (%s)", p.what, p.purpose))
		if !seen[p.pkg] {
			seen[p.pkg] = true
			pkgs = append(pkgs, p.pkg)
		}
	}
	if len(missing) > 0 {
		problems = append(problems, fmt.Sprintf("missing %s: install with `sudo apt-get install -y %s` (on Debian or Ubuntu, `make run` installs them)",
			strings.Join(missing, ", "), strings.Join(pkgs, " ")))
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "\n"))
}

// controlPlaneAssets finds the kube-apiserver, etcd, kube-controller-manager
// and kubectl that `skiff up` runs: --assets-dir, else $KUBEBUILDER_ASSETS,
// else the cache that hack/envtest.sh fills.
func controlPlaneAssets(flag string) (string, error) {
	dir, from := flag, "--assets-dir"
	if dir == "" {
		dir, from = os.Getenv("KUBEBUILDER_ASSETS"), "$KUBEBUILDER_ASSETS"
	}
	if dir == "" {
		dir, from = controlplane.DefaultAssetsDir(), "the hack/envtest.sh cache"
	}
	var missing []string
	for _, bin := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return dir, nil
	}
	return "", fmt.Errorf(`skiff up runs Kubernetes v%s control-plane binaries; not found in %s: %[3]s (%[4]s).
They are not downloaded by skiff: build them once with hack/envtest.sh from a skiff clone
(about 7 minutes; cached in %s, which make run does for you),
or point --assets-dir (or KUBEBUILDER_ASSETS) at a directory holding kube-apiserver, etcd,
kube-controller-manager and kubectl`,
		controlplane.KubernetesVersion, dir, strings.Join(missing, ", "), from, controlplane.DefaultAssetsDir())
}

// siblingBinary finds a binary installed next to the running skiff (as
// `make build` puts them in bin/), or else on PATH.
func siblingBinary(name string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			p := filepath.Join(filepath.Dir(exe), name)
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%s is not next to skiff nor on PATH: build it with `make build` (bin/%s)", name, name)
}
