package node

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// LeaseNamespace holds one Lease per Node, named after it.
const LeaseNamespace = "skiff-node-lease"

// Timing of the heartbeat, as upstream's kubelet defaults.
const (
	// LeaseDurationSeconds is how long a Lease is valid without renewal.
	LeaseDurationSeconds = 40
	// DefaultLeaseInterval is how often the Lease is renewed.
	DefaultLeaseInterval = 10 * time.Second
	// DefaultStatusInterval is how often the status is computed; it is
	// posted only when it changed or DefaultFullStatusInterval has passed.
	DefaultStatusInterval = 10 * time.Second
	// DefaultFullStatusInterval is the longest time between two status posts.
	DefaultFullStatusInterval = time.Minute
)

// Options configure one node.
type Options struct {
	// Name is the Node's name.
	Name string
	// Labels are added to the Node when it is registered.
	Labels map[string]string
	// Machine is what the node reports about itself.
	Machine Machine
	// Runtime gives the runtime's version and readiness.
	Runtime cri.Runtime
	// Client reads and writes the Node and its Lease; it should not cache.
	Client client.Client
	// LeaseInterval, StatusInterval and FullStatusInterval default to the
	// package defaults when zero.
	LeaseInterval, StatusInterval, FullStatusInterval time.Duration
	// Port is the agent API port reported in daemonEndpoints.
	Port int32
	// Certificate is the PEM of the agent API's serving certificate,
	// reported in status.agentCertificate.
	Certificate string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Observe reads the pressure signals each time the status is
	// computed; nil (simulated nodes) means no pressure is ever reported.
	Observe func() Observations
	// Thresholds turn observations into pressure conditions.
	Thresholds []Threshold
}

// Node keeps one skiff Node registered and alive.
type Node struct {
	opts Options

	mu         sync.RWMutex
	node       *corev1alpha1.Node
	lease      *coordinationv1.Lease
	lastPosted time.Time
}

// New returns a Node keeper; call Register, then Run.
func New(opts Options) *Node {
	if opts.LeaseInterval == 0 {
		opts.LeaseInterval = DefaultLeaseInterval
	}
	if opts.StatusInterval == 0 {
		opts.StatusInterval = DefaultStatusInterval
	}
	if opts.FullStatusInterval == 0 {
		opts.FullStatusInterval = DefaultFullStatusInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Node{opts: opts}
}

// Name is the Node's name.
func (n *Node) Name() string { return n.opts.Name }

// Object returns the last Node object the agent read or wrote; nil before
// Register. Callers must not modify it.
func (n *Node) Object() *corev1alpha1.Node {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.node
}

// HostIP is the node's InternalIP address, or "".
func (n *Node) HostIP() string {
	for _, a := range n.opts.Machine.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// EnsureLeaseNamespace creates the skiff-node-lease namespace when missing.
func EnsureLeaseNamespace(ctx context.Context, c client.Client) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LeaseNamespace}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", LeaseNamespace, err)
	}
	return nil
}

// Register creates the Node when it does not exist, posts its status and
// renews its Lease once.
func (n *Node) Register(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithValues("node", klog.KRef("", n.opts.Name))
	node := &corev1alpha1.Node{}
	err := n.opts.Client.Get(ctx, client.ObjectKey{Name: n.opts.Name}, node)
	if apierrors.IsNotFound(err) {
		log.V(2).Info("Registering node")
		node = newNodeObject(n.opts.Name, n.opts.Machine, n.opts.Labels)
		err = n.opts.Client.Create(ctx, node)
	}
	if err != nil {
		return fmt.Errorf("registering node %s: %w", n.opts.Name, err)
	}
	n.mu.Lock()
	n.node = node
	n.mu.Unlock()
	// The Lease first: a Node posting Ready=True with its Lease still
	// expired would be marked Ready=Unknown again by the node lifecycle
	// controller.
	if err := observeLeaseRenewal(n.renewLease(ctx)); err != nil {
		return err
	}
	return n.postStatus(ctx, true)
}

// newNodeObject is the Node that registration creates.
func newNodeObject(name string, m Machine, labels map[string]string) *corev1alpha1.Node {
	node := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		corev1.LabelHostname:   name,
		corev1.LabelOSStable:   m.OperatingSystem,
		corev1.LabelArchStable: m.Architecture,
	}}}
	for k, v := range labels {
		node.Labels[k] = v
	}
	return node
}

// AwaitPodCIDR returns the spec.podCIDR of the Node named name, creating the
// Node first when it does not exist (as Register would; Register then finds
// it) and waiting until the node IPAM of skiff-controller-manager gives it
// one. A node of a multi-node cluster needs the range the cluster routes to
// it before its pod network starts.
func AwaitPodCIDR(ctx context.Context, c client.Client, name string, m Machine) (string, error) {
	log := ctrl.LoggerFrom(ctx).WithValues("node", klog.KRef("", name))
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	logged := false
	for {
		node := &corev1alpha1.Node{}
		err := c.Get(ctx, client.ObjectKey{Name: name}, node)
		if apierrors.IsNotFound(err) {
			log.V(2).Info("Registering node before its pod network starts")
			err = c.Create(ctx, newNodeObject(name, m, nil))
			if apierrors.IsAlreadyExists(err) {
				err = nil
			}
		}
		switch {
		case err != nil:
			log.Error(err, "Reading the node's pod CIDR failed")
		case node.Spec.PodCIDR != "":
			return node.Spec.PodCIDR, nil
		case !logged:
			log.Info("Waiting for the node IPAM of skiff-controller-manager to give the node a spec.podCIDR")
			logged = true
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for the pod CIDR of node %s: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// Run renews the Lease and posts the status until ctx ends. Ticks start at
// a random offset so that many simulated nodes spread their writes.
func (n *Node) Run(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx).WithValues("node", klog.KRef("", n.opts.Name))
	jitter := func(d time.Duration) time.Duration { return time.Duration(rand.Int64N(int64(d))) }
	leaseT := time.NewTimer(jitter(n.opts.LeaseInterval))
	statusT := time.NewTimer(jitter(n.opts.StatusInterval))
	defer leaseT.Stop()
	defer statusT.Stop()
	var lastErr error
	var lastOK time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-leaseT.C:
			err := observeLeaseRenewal(n.renewLease(ctx))
			if err != nil && ctx.Err() == nil {
				log.Error(err, "Renewing the node lease failed")
			}
			now := n.opts.Now()
			if err == nil && (lastErr != nil || (!lastOK.IsZero() && now.Sub(lastOK) > 3*n.opts.LeaseInterval)) {
				// Back after a partition or a stall: the node lifecycle
				// controller may have marked the Node Ready=Unknown meanwhile,
				// which the status this agent remembers does not show.
				log.Info("Reached the API server again: posting the node status afresh")
				if err := n.refreshStatus(ctx); err != nil && ctx.Err() == nil {
					log.Error(err, "Posting the node status afresh failed")
				}
			}
			if err == nil {
				lastOK = now
			}
			lastErr = err
			leaseT.Reset(n.opts.LeaseInterval)
		case <-statusT.C:
			if err := n.postStatus(ctx, false); err != nil && ctx.Err() == nil {
				log.Error(err, "Posting the node status failed")
			}
			statusT.Reset(n.opts.StatusInterval)
		}
	}
}

func (n *Node) runtimeState(ctx context.Context) (name, version string, ready bool, msg string) {
	v, err := n.opts.Runtime.Version(ctx, "v1")
	if err != nil {
		return "unknown", "unknown", false, err.Error()
	}
	st, err := n.opts.Runtime.Status(ctx, false)
	if err != nil {
		return v.RuntimeName, v.RuntimeVersion, false, err.Error()
	}
	ready = true
	for _, c := range st.GetStatus().GetConditions() {
		if (c.Type == "RuntimeReady" || c.Type == "NetworkReady") && !c.Status {
			ready = false
			msg += c.Type + ": " + c.Reason + " " + c.Message + "; "
		}
	}
	return v.RuntimeName, v.RuntimeVersion, ready, msg
}

// refreshStatus reads the Node from the API server and posts the status
// against it, so that conditions someone else wrote (Ready=Unknown by the
// node lifecycle controller) are corrected.
func (n *Node) refreshStatus(ctx context.Context) error {
	fresh, err := n.readNode(ctx)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.node = fresh
	n.mu.Unlock()
	return n.postStatus(ctx, true)
}

// readNode reads the Node as stored (the client does not cache).
func (n *Node) readNode(ctx context.Context) (*corev1alpha1.Node, error) {
	node := &corev1alpha1.Node{}
	if err := n.opts.Client.Get(ctx, client.ObjectKey{Name: n.opts.Name}, node); err != nil {
		return nil, fmt.Errorf("reading node %s: %w", n.opts.Name, err)
	}
	return node, nil
}

// postStatus computes the status and patches it when it changed, when
// force is set, or when the last post is older than FullStatusInterval.
func (n *Node) postStatus(ctx context.Context, force bool) error {
	n.mu.RLock()
	old := n.node
	last := n.lastPosted
	n.mu.RUnlock()
	now := n.opts.Now()
	if !force && now.Sub(last) >= n.opts.FullStatusInterval {
		// The full post is against the Node as stored, so a condition
		// someone else changed (Ready=Unknown) is corrected, not left out
		// of a patch computed against what this agent last wrote.
		fresh, err := n.readNode(ctx)
		if err != nil {
			return err
		}
		old = fresh
	}
	name, version, ready, msg := n.runtimeState(ctx)
	var pressure Pressure
	if n.opts.Observe != nil {
		pressure = JudgePressure(n.opts.Observe(), n.opts.Thresholds)
	}
	st := ComputeStatus(old.Status, StatusInput{
		Machine: n.opts.Machine, RuntimeName: name, RuntimeVersion: version,
		RuntimeReady: ready, RuntimeMessage: msg, Unschedulable: old.Spec.Unschedulable,
		Port: n.opts.Port, Certificate: n.opts.Certificate, Now: metav1.NewTime(now), Pressure: pressure,
	})
	if !force && equality.Semantic.DeepEqual(st, old.Status) && now.Sub(last) < n.opts.FullStatusInterval {
		return nil
	}
	updated := old.DeepCopy()
	updated.Status = st
	if err := n.opts.Client.Status().Patch(ctx, updated, client.MergeFrom(old)); err != nil {
		return fmt.Errorf("patching the status of node %s: %w", n.opts.Name, err)
	}
	n.mu.Lock()
	n.node = updated
	n.lastPosted = now
	n.mu.Unlock()
	return nil
}

// renewLease creates or renews the node's Lease; the Lease is owned by the
// Node so that deleting the Node deletes it.
func (n *Node) renewLease(ctx context.Context) error {
	n.mu.RLock()
	lease, node := n.lease, n.node
	n.mu.RUnlock()
	now := metav1.NewMicroTime(n.opts.Now())
	if lease == nil {
		lease = &coordinationv1.Lease{}
		err := n.opts.Client.Get(ctx, client.ObjectKey{Namespace: LeaseNamespace, Name: n.opts.Name}, lease)
		if apierrors.IsNotFound(err) {
			lease = &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Namespace: LeaseNamespace, Name: n.opts.Name},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity:       ptr.To(n.opts.Name),
					LeaseDurationSeconds: ptr.To[int32](LeaseDurationSeconds),
					RenewTime:            &now,
				},
			}
			setLeaseOwner(lease, node)
			if err := n.opts.Client.Create(ctx, lease); err != nil {
				return fmt.Errorf("creating the lease of node %s: %w", n.opts.Name, err)
			}
			n.mu.Lock()
			n.lease = lease
			n.mu.Unlock()
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading the lease of node %s: %w", n.opts.Name, err)
		}
	}
	lease = lease.DeepCopy()
	lease.Spec.HolderIdentity = ptr.To(n.opts.Name)
	lease.Spec.LeaseDurationSeconds = ptr.To[int32](LeaseDurationSeconds)
	lease.Spec.RenewTime = &now
	setLeaseOwner(lease, node)
	if err := n.opts.Client.Update(ctx, lease); err != nil {
		// A conflict means someone else wrote the Lease: read it again next time.
		n.mu.Lock()
		n.lease = nil
		n.mu.Unlock()
		return fmt.Errorf("renewing the lease of node %s: %w", n.opts.Name, err)
	}
	n.mu.Lock()
	n.lease = lease
	n.mu.Unlock()
	return nil
}

func setLeaseOwner(lease *coordinationv1.Lease, node *corev1alpha1.Node) {
	if node == nil || node.UID == "" || len(lease.OwnerReferences) > 0 {
		return
	}
	lease.OwnerReferences = []metav1.OwnerReference{{
		APIVersion: corev1alpha1.GroupVersion.String(), Kind: "Node", Name: node.Name, UID: node.UID,
	}}
}
