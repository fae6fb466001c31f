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

// ClearUDP deletes the UDP flows to serviceIP:servicePort that were NATed to endpointIP.
func (CommandConntrack) ClearUDP(ctx context.Context, serviceIP string, servicePort int32, endpointIP string) error {
	out, err := exec.CommandContext(ctx, "conntrack", "-D", "-p", "udp",
		"--orig-dst", serviceIP, "--dport", fmt.Sprint(servicePort), "--reply-src", endpointIP).CombinedOutput()
	// conntrack exits 1 when nothing matched; that is success here.
	if err != nil && !strings.Contains(string(out), "0 flow entries have been deleted") {
		return fmt.Errorf("conntrack: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
