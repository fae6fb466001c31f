package core

import (
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
)

// ErrCIDRsExhausted says every node CIDR of the cluster CIDR is in use.
var ErrCIDRsExhausted = errors.New("no node CIDR left in the cluster CIDR")

// CIDRAllocator hands out the node-sized subnets of a cluster CIDR, as
// upstream's range allocator (pkg/controller/nodeipam/ipam). It is safe for
// concurrent use.
type CIDRAllocator struct {
	cluster  netip.Prefix
	maskSize int
	count    int // number of node CIDRs

	mu    sync.Mutex
	used  map[int]string // index -> node
	nodes map[string]int // node -> index
	next  int            // where the search for a free index starts
}

// NewCIDRAllocator returns an allocator of /maskSize subnets of clusterCIDR.
func NewCIDRAllocator(clusterCIDR string, maskSize int) (*CIDRAllocator, error) {
	p, err := netip.ParsePrefix(clusterCIDR)
	if err != nil {
		return nil, fmt.Errorf("cluster CIDR %q: %w", clusterCIDR, err)
	}
	p = p.Masked()
	bits := p.Addr().BitLen()
	if maskSize < p.Bits() || maskSize > bits {
		return nil, fmt.Errorf("node CIDR mask size %d must be between the cluster CIDR's %d and %d", maskSize, p.Bits(), bits)
	}
	if maskSize-p.Bits() > 24 {
		return nil, fmt.Errorf("node CIDR mask size %d splits %s into more than 2^24 subnets", maskSize, p)
	}
	return &CIDRAllocator{
		cluster: p, maskSize: maskSize, count: 1 << (maskSize - p.Bits()),
		used: map[int]string{}, nodes: map[string]int{},
	}, nil
}

// cidr returns the index-th node CIDR.
func (a *CIDRAllocator) cidr(index int) netip.Prefix {
	base := new(big.Int).SetBytes(a.cluster.Addr().AsSlice())
	offset := new(big.Int).Lsh(big.NewInt(int64(index)), uint(a.cluster.Addr().BitLen()-a.maskSize))
	raw := base.Add(base, offset).Bytes()
	buf := make([]byte, a.cluster.Addr().BitLen()/8)
	copy(buf[len(buf)-len(raw):], raw)
	addr, _ := netip.AddrFromSlice(buf)
	return netip.PrefixFrom(addr, a.maskSize)
}

// index returns the index of a node CIDR of this cluster CIDR.
func (a *CIDRAllocator) index(cidr string) (int, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return 0, err
	}
	if p.Bits() != a.maskSize || !a.cluster.Contains(p.Addr()) || p.Masked() != p {
		return 0, fmt.Errorf("%s is not a /%d subnet of %s", cidr, a.maskSize, a.cluster)
	}
	base := new(big.Int).SetBytes(a.cluster.Addr().AsSlice())
	off := new(big.Int).Sub(new(big.Int).SetBytes(p.Addr().AsSlice()), base)
	return int(off.Rsh(off, uint(p.Addr().BitLen()-a.maskSize)).Int64()), nil
}

// Occupy records that node holds cidr (rebuilding after a restart). It
// fails when the CIDR is outside the cluster CIDR or held by another node.
func (a *CIDRAllocator) Occupy(node, cidr string) error {
	i, err := a.index(cidr)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if other, ok := a.used[i]; ok && other != node {
		return fmt.Errorf("%s is already held by node %s", cidr, other)
	}
	a.used[i] = node
	a.nodes[node] = i
	return nil
}

// Allocate returns the node's CIDR, allocating a free one when it has none.
func (a *CIDRAllocator) Allocate(node string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.nodes[node]; ok {
		return a.cidr(i).String(), nil
	}
	for n := 0; n < a.count; n++ {
		i := (a.next + n) % a.count
		if _, taken := a.used[i]; !taken {
			a.used[i] = node
			a.nodes[node] = i
			a.next = (i + 1) % a.count
			return a.cidr(i).String(), nil
		}
	}
	return "", ErrCIDRsExhausted
}

// Release frees the node's CIDR, if it has one.
func (a *CIDRAllocator) Release(node string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i, ok := a.nodes[node]; ok {
		delete(a.nodes, node)
		delete(a.used, i)
	}
}

// Used returns how many node CIDRs are held.
func (a *CIDRAllocator) Used() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}
