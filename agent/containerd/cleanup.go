package containerd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/internal/mounts"
)

// Cleanup removes everything a managed containerd under rootDir left on
// the host: it stops and removes every sandbox through CRI, stops that
// containerd (by the PID it recorded), ends the shims it started (found by
// its socket address), unmounts what is mounted under rootDir and deletes the
// node's bridge. It leaves other containerds and their containers alone.
func Cleanup(ctx context.Context, rootDir, nodeName string) error {
	o := Options{RootDir: rootDir, NodeName: nodeName}
	_, sock, _, _, _, _ := o.paths()
	var errs []string
	if serving(sock) {
		if rt, err := cri.Connect(ctx, "unix://"+sock, 5*time.Second); err == nil {
			sandboxes, _ := rt.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{})
			for _, s := range sandboxes {
				if err := rt.StopPodSandbox(ctx, s.Id); err != nil {
					errs = append(errs, err.Error())
				}
				if err := rt.RemovePodSandbox(ctx, s.Id); err != nil {
					errs = append(errs, err.Error())
				}
			}
		}
	}
	if pid, ok := runningPID(filepath.Join(rootDir, "containerd.pid")); ok {
		(&Containerd{opts: o, pid: pid}).Stop()
	}
	for _, pid := range shimPIDs(sock) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	mounts, _ := mounts.Under(rootDir)
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Sprintf("unmounting %s: %v", m, err))
		}
	}
	if nodeName != "" {
		if _, err := os.Stat("/sys/class/net/" + BridgeName(nodeName)); err == nil {
			if out, err := exec.CommandContext(ctx, "ip", "link", "del", BridgeName(nodeName)).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Sprintf("deleting bridge: %v: %s", err, out))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleaning up %s: %s", rootDir, strings.Join(errs, "; "))
	}
	return nil
}

// shimPIDs finds the containerd-shim processes of the containerd at sock.
func shimPIDs(sock string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) == 0 || !strings.Contains(args[0], "containerd-shim") {
			continue
		}
		for i, a := range args {
			if a == "-address" && i+1 < len(args) && args[i+1] == sock {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
