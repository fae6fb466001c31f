// Command udpecho is the UDP server of the agent end-to-end suite's Service
// specs (busybox-static's nc has no UDP mode): it answers every datagram
// with "hello from $POD_NAME". The suite builds it static and mounts it into
// busybox pods.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func main() {
	addr := flag.String("listen", ":5353", "UDP address to serve")
	flag.Parse()
	conn, err := net.ListenPacket("udp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	reply := []byte("hello from " + os.Getenv("POD_NAME"))
	buf := make([]byte, 1500)
	for {
		_, peer, err := conn.ReadFrom(buf)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_, _ = conn.WriteTo(reply, peer)
	}
}
