package node

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// MaxPods is the number of pods a node accepts, as upstream's default.
const MaxPods = 110

// Machine is what a node reports about itself that does not come from the
// container runtime.
type Machine struct {
	// Capacity holds cpu, memory, ephemeral-storage and pods.
	Capacity corev1.ResourceList
	// Addresses are InternalIP and Hostname.
	Addresses []corev1.NodeAddress
	// KernelVersion, OSImage, OperatingSystem, Architecture, MachineID and
	// BootID fill nodeInfo.
	KernelVersion, OSImage, OperatingSystem, Architecture, MachineID, SystemUUID, BootID string
}

// Resources are the quantities a simulated machine reports.
type Resources struct {
	CPU, Memory, EphemeralStorage resource.Quantity
}

// SimulatedMachine describes a simulated node: the given resources, a
// made-up address and the host's kernel and OS.
func SimulatedMachine(name string, index int, res Resources) Machine {
	m := hostSystem()
	m.Capacity = corev1.ResourceList{
		corev1.ResourceCPU:              res.CPU,
		corev1.ResourceMemory:           res.Memory,
		corev1.ResourceEphemeralStorage: res.EphemeralStorage,
		corev1.ResourcePods:             *resource.NewQuantity(MaxPods, resource.DecimalSI),
	}
	m.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.%d.%d.%d", 64+(index>>16)&0x3f, (index>>8)&0xff, index&0xff)},
		{Type: corev1.NodeHostName, Address: name},
	}
	m.MachineID = fmt.Sprintf("sim-%08d", index)
	m.SystemUUID = fmt.Sprintf("00000000-0000-0000-0000-%012d", index)
	return m
}

// HostMachine describes this machine: CPUs, memory, the file system that
// holds rootDir, and nodeIP (or the first global IPv4 address when empty).
func HostMachine(rootDir, nodeIP string) (Machine, error) {
	m := hostSystem()
	mem, err := memTotal()
	if err != nil {
		return m, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(rootDir, &st); err != nil {
		return m, fmt.Errorf("reading the size of %s: %w", rootDir, err)
	}
	m.Capacity = corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(st.Blocks)*st.Bsize, resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(MaxPods, resource.DecimalSI),
	}
	if nodeIP == "" {
		nodeIP = firstGlobalIPv4()
	}
	hostname, _ := os.Hostname()
	if nodeIP != "" {
		m.Addresses = append(m.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: nodeIP})
	}
	m.Addresses = append(m.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: hostname})
	return m, nil
}

func hostSystem() Machine {
	m := Machine{OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH, OSImage: "Linux"}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		m.KernelVersion = b.String()
	}
	if f, err := os.Open("/etc/os-release"); err == nil {
		defer f.Close()
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "PRETTY_NAME="); ok {
				m.OSImage = strings.Trim(v, `"`)
			}
		}
	}
	if b, err := os.ReadFile("/etc/machine-id"); err == nil {
		m.MachineID = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/sys/class/dmi/id/product_uuid"); err == nil {
		m.SystemUUID = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		m.BootID = strings.TrimSpace(string(b))
	}
	return m
}

func memTotal() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(s.Text(), "MemTotal: %d kB", &kb); err == nil {
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no MemTotal in /proc/meminfo")
}

func firstGlobalIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}
