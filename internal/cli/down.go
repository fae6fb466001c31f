package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/knftables"

	"github.com/skiff-dev/skiff/controllers/proxy"
	"github.com/skiff-dev/skiff/internal/mounts"
)

type downOptions struct {
	dataDir string
	purge   bool
}

func newDownCommand() *cobra.Command {
	o := downOptions{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop the local cluster of skiff up; --purge also deletes its data",
		Long: `down stops a running "skiff up" on the data directory (as Ctrl-C does) and keeps
the data, so the next "skiff up" brings back the same objects.

With --purge it then removes everything the cluster left on this machine: the
node's containers and their shims, its mounts and network namespaces, its
bridge, the service proxy's nftables table, any process a crashed "skiff up"
left behind, and the data directory itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDown(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	addDataDirFlag(cmd, &o.dataDir)
	cmd.Flags().BoolVar(&o.purge, "purge", false, "also delete the data directory, containers, mounts, network namespaces and nftables rules")
	return cmd
}

func runDown(ctx context.Context, out io.Writer, o downOptions) error {
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	c := cluster{dir: dataDir}
	if _, err := os.Stat(dataDir); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(out, "No local cluster in %s\n", dataDir)
		return nil
	}
	state, err := c.readState()
	switch {
	case err == nil:
		up := process{PID: state.PID, Start: startOf(state)}
		if up.alive() {
			fmt.Fprintf(out, "Stopping skiff up (pid %d)\n", up.PID)
			_ = syscall.Kill(up.PID, syscall.SIGTERM)
			if !waitGone(up, 3*time.Minute) {
				return fmt.Errorf("skiff up (pid %d) did not stop within 3 minutes", up.PID)
			}
		}
		// What a crashed skiff up left running.
		for _, p := range state.Processes {
			if p.PID != state.PID && p.alive() {
				fmt.Fprintf(out, "Stopping %s (pid %d), left by an earlier skiff up\n", p.Name, p.PID)
				terminate(p, 15*time.Second)
			}
		}
		if !o.purge {
			_ = os.Remove(c.statePath())
		}
	case errors.Is(err, os.ErrNotExist):
		if !o.purge {
			fmt.Fprintf(out, "skiff up is not running on %s\n", dataDir)
		}
	default:
		return err
	}
	if !o.purge {
		fmt.Fprintf(out, "Stopped; the data stays in %s (skiff down --purge deletes it)\n", dataDir)
		return nil
	}
	return purge(ctx, out, c, state)
}

func waitGone(p process, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// purge removes what the node left on the host and the data directory.
func purge(ctx context.Context, out io.Writer, c cluster, state *upState) error {
	var errs []error
	nodeName, podCIDR := "", upPodCIDR
	if state != nil {
		nodeName, podCIDR = state.NodeName, state.PodCIDR
	} else if b, err := os.ReadFile(filepath.Join(c.dir, "node-name")); err == nil {
		nodeName = strings.TrimSpace(string(b))
	}
	if nodeName != "" {
		fmt.Fprintf(out, "Removing the containers, network namespaces and bridge of node %s\n", nodeName)
		pause, _ := siblingBinary("skiff-pause")
		if err := stopNodeContainers(c, &upState{NodeName: nodeName, PodCIDR: podCIDR}, pause); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeProxyTable(ctx, out); err != nil {
		errs = append(errs, err)
	}
	mounts, err := mounts.Under(c.dir)
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	fmt.Fprintf(out, "Deleting %s\n", c.dir)
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintln(out, "Purged")
	return nil
}

// removeProxyTable deletes the service proxy's nftables table, which an
// agent removes itself when it stops; it stays when the agent was killed.
// Another skiff-agent running on this host owns it, and keeps it.
func removeProxyTable(ctx context.Context, out io.Writer) error {
	if pids := processesNamed("skiff-agent"); len(pids) > 0 {
		fmt.Fprintf(out, "Keeping nftables table ip %s: skiff-agent runs (pid %v)\n", proxy.TableName, pids)
		return nil
	}
	nft, err := knftables.New(knftables.IPv4Family, proxy.TableName)
	if err != nil {
		// No nftables on this host: there is no table either.
		return nil
	}
	tx := nft.NewTransaction()
	tx.Delete(&knftables.Table{})
	if err := nft.Run(ctx, tx); err != nil {
		if knftables.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("deleting nftables table ip %s: %w", proxy.TableName, err)
	}
	fmt.Fprintf(out, "Deleted nftables table ip %s\n", proxy.TableName)
	return nil
}

// processesNamed lists the PIDs whose command name is name.
func processesNamed(name string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(b)) != name {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
