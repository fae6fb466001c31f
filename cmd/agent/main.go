// Command skiff-agent is skiff's kubelet: it registers its Node, renews the
// node Lease and runs the node's pods as containers through CRI.
package main

import (
	"fmt"
	"os"
)

func main() {
	// The agent is being built under issue 10 ("skiff-agent: real pods on
	// containerd through CRI"); until it lands, say so instead of pretending.
	fmt.Fprintln(os.Stderr, "skiff-agent: not available in this build yet (tracked as issue 10)")
	os.Exit(1)
}
