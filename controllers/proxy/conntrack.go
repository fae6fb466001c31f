package proxy

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// CommandConntrack clears conntrack entries with the conntrack tool
// (Debian package conntrack).
type CommandConntrack struct{}

// ClearUDP deletes the UDP flows to serviceIP:servicePort that were NATed
// to endpointIP; an empty serviceIP matches every destination (a NodePort).
func (CommandConntrack) ClearUDP(ctx context.Context, serviceIP string, servicePort int32, endpointIP string) error {
	args := []string{"-D", "-p", "udp"}
	if serviceIP != "" {
		args = append(args, "--orig-dst", serviceIP)
	}
	args = append(args, "--dport", fmt.Sprint(servicePort), "--reply-src", endpointIP)
	out, err := exec.CommandContext(ctx, "conntrack", args...).CombinedOutput()
	// conntrack exits 1 when nothing matched; that is success here.
	if err != nil && !strings.Contains(string(out), "0 flow entries have been deleted") {
		return fmt.Errorf("conntrack: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
