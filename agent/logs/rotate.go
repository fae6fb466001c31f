package logs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Defaults of the rotation, as the kubelet's containerLogMaxSize,
// containerLogMaxFiles and containerLogMonitorInterval.
const (
	DefaultMaxSize  = 10 * 1024 * 1024
	DefaultMaxFiles = 5
	DefaultInterval = 10 * time.Second
)

// rotatedTimeFormat suffixes a rotated file: fixed width, so that names
// sort by time, with nanoseconds, so that two rotations never collide.
const rotatedTimeFormat = "20060102-150405.000000000"

// RotationRuntime is the part of CRI the Rotator uses.
type RotationRuntime interface {
	ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) ([]*runtimeapi.Container, error)
	ContainerStatus(ctx context.Context, containerID string, verbose bool) (*runtimeapi.ContainerStatusResponse, error)
	ReopenContainerLog(ctx context.Context, containerID string) error
}

// Rotator keeps the log files of running containers within a size and a
// number of files.
type Rotator struct {
	// Runtime lists the containers and reopens their logs.
	Runtime RotationRuntime
	// Labels select the containers whose logs are rotated (this node's).
	Labels map[string]string
	// MaxSize is the size in bytes at which a log is rotated.
	MaxSize int64
	// MaxFiles is how many files a container's log may have, the current
	// one included; at least 2.
	MaxFiles int
	// Interval is how often the logs are looked at.
	Interval time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Validate checks the limits.
func (r *Rotator) Validate() error {
	if r.MaxSize <= 0 {
		return fmt.Errorf("container log max size must be positive, not %d", r.MaxSize)
	}
	if r.MaxFiles < 2 {
		return fmt.Errorf("container log max files must be at least 2, not %d", r.MaxFiles)
	}
	if r.Interval <= 0 {
		return fmt.Errorf("container log monitor interval must be positive, not %s", r.Interval)
	}
	return nil
}

// NeedLeaderElection is false: every agent rotates its own node's logs.
func (r *Rotator) NeedLeaderElection() bool { return false }

// Start rotates logs every Interval until ctx ends.
func (r *Rotator) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("log-rotation")
	t := time.NewTicker(r.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := r.RotateAll(ctx); err != nil && ctx.Err() == nil {
			log.V(2).Info("Rotating container logs failed", "err", err.Error())
		}
	}
}

// RotateAll rotates the log of every running container that reached
// MaxSize and removes rotated files beyond MaxFiles.
func (r *Rotator) RotateAll(ctx context.Context) error {
	cs, err := r.Runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{
		State:         &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		LabelSelector: r.Labels,
	})
	if err != nil {
		return fmt.Errorf("listing running containers: %w", err)
	}
	var errs []error
	for _, c := range cs {
		st, err := r.Runtime.ContainerStatus(ctx, c.Id, false)
		if err != nil {
			continue // Gone meanwhile.
		}
		path := st.GetStatus().GetLogPath()
		if path == "" {
			continue
		}
		if err := r.rotate(ctx, c.Id, path); err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", c.Id, err))
		}
	}
	return errors.Join(errs...)
}

// Rotated lists the rotated files of the log at path, oldest first.
func Rotated(path string) ([]string, error) {
	matches, err := filepath.Glob(globEscape(path) + ".*")
	if err != nil {
		return nil, err
	}
	sort.Strings(matches)
	return matches, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	return r.Replace(s)
}

// rotate renames the log at path when it reached MaxSize and asks the
// runtime to write a new one, keeping at most MaxFiles files.
func (r *Rotator) rotate(ctx context.Context, id, path string) error {
	rotated, err := Rotated(path)
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil // Not written yet, or being replaced.
	}
	keep := r.MaxFiles - 1 // Rotated files besides the current one.
	if st.Size() >= r.MaxSize {
		keep--
	}
	for len(rotated) > keep {
		if err := os.Remove(rotated[0]); err != nil && !os.IsNotExist(err) {
			return err
		}
		rotated = rotated[1:]
	}
	if st.Size() < r.MaxSize {
		return nil
	}
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	dst := path + "." + now().UTC().Format(rotatedTimeFormat)
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("renaming %s: %w", path, err)
	}
	ctrl.LoggerFrom(ctx).V(4).Info("Rotated container log", "path", path, "size", st.Size())
	if err := r.Runtime.ReopenContainerLog(ctx, id); err != nil {
		// Keep writing to the old file rather than to no file.
		if rerr := os.Rename(dst, path); rerr != nil {
			return errors.Join(fmt.Errorf("reopening the log: %w", err), rerr)
		}
		return fmt.Errorf("reopening the log: %w", err)
	}
	return nil
}
