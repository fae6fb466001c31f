package node

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Signal names, as the kubelet's eviction signals.
const (
	SignalMemoryAvailable    = "memory.available"
	SignalNodeFSAvailable    = "nodefs.available"
	SignalNodeFSInodesFree   = "nodefs.inodesFree"
	SignalImageFSAvailable   = "imagefs.available"
	SignalImageFSInodesFree  = "imagefs.inodesFree"
	SignalPIDAvailable       = "pid.available"
	DefaultEvictionHardFlags = "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,imagefs.inodesFree<5%"
)

// pressureOf maps each signal to the node condition it raises.
var pressureOf = map[string]string{
	SignalMemoryAvailable:   "MemoryPressure",
	SignalNodeFSAvailable:   "DiskPressure",
	SignalNodeFSInodesFree:  "DiskPressure",
	SignalImageFSAvailable:  "DiskPressure",
	SignalImageFSInodesFree: "DiskPressure",
	SignalPIDAvailable:      "PIDPressure",
}

// Threshold is one `<signal><<quantity or percentage>` of --eviction-hard:
// the node is under pressure while the signal's available amount is below
// it.
type Threshold struct {
	Signal string
	// Quantity is the absolute threshold; nil when Percentage is used.
	Quantity *resource.Quantity
	// Percentage of the signal's capacity, 0-100.
	Percentage float64
}

func (t Threshold) String() string {
	if t.Quantity != nil {
		return t.Signal + "<" + t.Quantity.String()
	}
	return t.Signal + "<" + strconv.FormatFloat(t.Percentage, 'f', -1, 64) + "%"
}

// ParseThresholds reads the kubelet's --eviction-hard syntax:
// comma-separated `signal<value` where value is a quantity (100Mi, 1000) or
// a percentage (10%). An empty string means no thresholds.
func ParseThresholds(s string) ([]Threshold, error) {
	var out []Threshold
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		signal, value, ok := strings.Cut(part, "<")
		if !ok {
			return nil, fmt.Errorf("eviction threshold %q: want <signal><<value>, e.g. memory.available<100Mi", part)
		}
		if _, known := pressureOf[signal]; !known {
			return nil, fmt.Errorf("eviction threshold %q: unknown signal %q (known: memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available)", part, signal)
		}
		t := Threshold{Signal: signal}
		if p, isPct := strings.CutSuffix(value, "%"); isPct {
			f, err := strconv.ParseFloat(p, 64)
			if err != nil || f < 0 || f > 100 {
				return nil, fmt.Errorf("eviction threshold %q: percentage must be between 0%% and 100%%", part)
			}
			t.Percentage = f
		} else {
			q, err := resource.ParseQuantity(value)
			if err != nil || q.Sign() < 0 {
				return nil, fmt.Errorf("eviction threshold %q: %q is not a non-negative quantity", part, value)
			}
			t.Quantity = &q
		}
		out = append(out, t)
	}
	return out, nil
}

// Observation is a signal's available amount and its capacity.
type Observation struct {
	Available, Capacity int64
}

// Observations are the signals read at one moment; a missing signal is not
// judged.
type Observations map[string]Observation

// Pressure is the result of comparing observations with thresholds: for
// each pressure condition (MemoryPressure, DiskPressure, PIDPressure) that
// holds, the crossed thresholds in words.
type Pressure map[string][]string

// JudgePressure compares the observations with the thresholds.
func JudgePressure(obs Observations, thresholds []Threshold) Pressure {
	p := Pressure{}
	for _, t := range thresholds {
		o, ok := obs[t.Signal]
		if !ok {
			continue
		}
		limit := int64(float64(o.Capacity) * t.Percentage / 100)
		if t.Quantity != nil {
			limit = t.Quantity.Value()
		}
		if o.Available < limit {
			cond := pressureOf[t.Signal]
			p[cond] = append(p[cond], fmt.Sprintf("%s is %s, below the threshold %s", t.Signal, formatAmount(t.Signal, o.Available), t))
		}
	}
	return p
}

func formatAmount(signal string, v int64) string {
	switch signal {
	case SignalNodeFSInodesFree, SignalImageFSInodesFree, SignalPIDAvailable:
		return strconv.FormatInt(v, 10)
	}
	return resource.NewQuantity(v, resource.BinarySI).String()
}

// HostObserver reads the pressure signals of this machine: available memory
// (MemAvailable), the file systems of the node's root dir (nodefs) and of
// the container runtime's images (imagefs), and free process IDs.
type HostObserver struct {
	NodeFS, ImageFS string
}

// Observe reads the signals; one that cannot be read is left out.
func (h HostObserver) Observe() Observations {
	obs := Observations{}
	if avail, total, err := memAvailable(); err == nil {
		obs[SignalMemoryAvailable] = Observation{Available: avail, Capacity: total}
	}
	for _, fs := range []struct{ dir, bytes, inodes string }{
		{h.NodeFS, SignalNodeFSAvailable, SignalNodeFSInodesFree},
		{h.ImageFS, SignalImageFSAvailable, SignalImageFSInodesFree},
	} {
		var st syscall.Statfs_t
		if fs.dir == "" || syscall.Statfs(fs.dir, &st) != nil {
			continue
		}
		obs[fs.bytes] = Observation{Available: int64(st.Bavail) * st.Bsize, Capacity: int64(st.Blocks) * st.Bsize}
		if st.Files > 0 {
			obs[fs.inodes] = Observation{Available: int64(st.Ffree), Capacity: int64(st.Files)}
		}
	}
	if avail, max, err := pidsAvailable(); err == nil {
		obs[SignalPIDAvailable] = Observation{Available: avail, Capacity: max}
	}
	return obs
}

func memAvailable() (avail, total int64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	found := 0
	for s.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(s.Text(), "MemTotal: %d kB", &kb); err == nil {
			total = kb * 1024
			found++
		} else if _, err := fmt.Sscanf(s.Text(), "MemAvailable: %d kB", &kb); err == nil {
			avail = kb * 1024
			found++
		}
	}
	if found < 2 {
		return 0, 0, fmt.Errorf("no MemTotal and MemAvailable in /proc/meminfo")
	}
	return avail, total, nil
}

// pidsAvailable is kernel.pid_max less the tasks that exist (the fourth
// field of /proc/loadavg counts them), as the kubelet's pid.available.
func pidsAvailable() (avail, max int64, err error) {
	raw, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		return 0, 0, err
	}
	if max, err = strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64); err != nil {
		return 0, 0, err
	}
	load, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, 0, err
	}
	fields := strings.Fields(string(load))
	if len(fields) < 4 {
		return 0, 0, fmt.Errorf("unexpected /proc/loadavg %q", load)
	}
	_, total, ok := strings.Cut(fields[3], "/")
	if !ok {
		return 0, 0, fmt.Errorf("unexpected /proc/loadavg %q", load)
	}
	tasks, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return 0, 0, err
	}
	return max - tasks, max, nil
}
