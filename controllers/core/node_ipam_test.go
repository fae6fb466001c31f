package core

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCIDRAllocator(t *testing.T) {
	type step struct {
		op   string // allocate, release, occupy
		node string
		cidr string // for occupy; the wanted result for allocate
		err  bool
	}
	tests := []struct {
		name     string
		cluster  string
		mask     int
		steps    []step
		wantUsed int
	}{{
		name: "consecutive non-overlapping /24s", cluster: "10.244.0.0/16", mask: 24,
		steps: []step{
			{op: "allocate", node: "a", cidr: "10.244.0.0/24"},
			{op: "allocate", node: "b", cidr: "10.244.1.0/24"},
			{op: "allocate", node: "a", cidr: "10.244.0.0/24"}, // idempotent
		},
		wantUsed: 2,
	}, {
		name: "a released CIDR is reused once the others are taken", cluster: "10.0.0.0/30", mask: 31,
		steps: []step{
			{op: "allocate", node: "a", cidr: "10.0.0.0/31"},
			{op: "allocate", node: "b", cidr: "10.0.0.2/31"},
			{op: "allocate", node: "c", err: true},
			{op: "release", node: "a"},
			{op: "allocate", node: "c", cidr: "10.0.0.0/31"},
		},
		wantUsed: 2,
	}, {
		name: "rebuilt allocations are skipped", cluster: "10.244.0.0/16", mask: 24,
		steps: []step{
			{op: "occupy", node: "old", cidr: "10.244.0.0/24"},
			{op: "occupy", node: "other", cidr: "10.244.0.0/24", err: true},
			{op: "occupy", node: "outside", cidr: "192.168.0.0/24", err: true},
			{op: "occupy", node: "wrong-size", cidr: "10.244.2.0/23", err: true},
			{op: "allocate", node: "new", cidr: "10.244.1.0/24"},
		},
		wantUsed: 2,
	}, {
		name: "IPv6", cluster: "fd00:10:244::/56", mask: 64,
		steps: []step{
			{op: "allocate", node: "a", cidr: "fd00:10:244::/64"},
			{op: "allocate", node: "b", cidr: "fd00:10:244:1::/64"},
		},
		wantUsed: 2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := NewCIDRAllocator(tt.cluster, tt.mask)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				switch s.op {
				case "allocate":
					got, err := a.Allocate(s.node)
					if (err != nil) != s.err || got != s.cidr {
						t.Errorf("step %d: Allocate(%s) = %q, %v; want %q, error %v", i, s.node, got, err, s.cidr, s.err)
					}
					if s.err && !errors.Is(err, ErrCIDRsExhausted) {
						t.Errorf("step %d: error %v, want ErrCIDRsExhausted", i, err)
					}
				case "release":
					a.Release(s.node)
				case "occupy":
					if err := a.Occupy(s.node, s.cidr); (err != nil) != s.err {
						t.Errorf("step %d: Occupy(%s, %s) = %v, want error %v", i, s.node, s.cidr, err, s.err)
					}
				}
			}
			if diff := cmp.Diff(tt.wantUsed, a.Used()); diff != "" {
				t.Errorf("used (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewCIDRAllocatorRejectsBadFlags(t *testing.T) {
	for _, tt := range []struct {
		cluster string
		mask    int
	}{{"not-a-cidr", 24}, {"10.244.0.0/16", 8}, {"10.244.0.0/16", 33}, {"10.0.0.0/8", 40}} {
		if _, err := NewCIDRAllocator(tt.cluster, tt.mask); err == nil {
			t.Errorf("NewCIDRAllocator(%q, %d): want an error", tt.cluster, tt.mask)
		}
	}
}
