package utils

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestCutProxy checks that the proxy forwards, drops open connections and
// refuses new ones when cut, and forwards again when healed.
func TestCutProxy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	p, err := StartCutProxy(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	echo := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line != "ping\n" {
			t.Errorf("echo %q", line)
		}
		return err
	}
	open, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if err := echo(open); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	p.Cut()
	if err := echo(open); err == nil {
		t.Error("an open connection still works after the cut")
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		if err := echo(c); err == nil {
			t.Error("a new connection works while cut")
		}
		c.Close()
	}
	p.Heal()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := echo(c); err != nil {
		t.Errorf("after healing: %v", err)
	}
}
