package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	fakeclient "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// TestRunCorrectsUnknownAfterPartition: while the agent cannot renew its
// Lease, the node lifecycle controller marks the Node Ready=Unknown; once
// the agent reaches the API server again it posts Ready=True at once, not
// at the next full status post (the status it remembers still says True,
// so a patch against it would change nothing).
func TestRunCorrectsUnknownAfterPartition(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cut atomic.Bool
	c := fakeclient.NewClientBuilder().WithScheme(scheme.New()).WithStatusSubresource(&corev1alpha1.Node{}).
		WithInterceptorFuncs(interceptor.Funcs{
			Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
				if _, ok := obj.(*coordinationv1.Lease); ok && cut.Load() {
					return errors.New("connection refused")
				}
				return c.Update(ctx, obj, opts...)
			},
		}).Build()
	res := Resources{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi"), EphemeralStorage: resource.MustParse("1Gi")}
	n := New(Options{Name: "n1", Machine: SimulatedMachine("n1", 1, res), Runtime: fake.New(fake.Options{}), Client: c,
		LeaseInterval: 20 * time.Millisecond, StatusInterval: time.Hour, FullStatusInterval: time.Hour})
	if err := EnsureLeaseNamespace(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := n.Register(ctx); err != nil {
		t.Fatal(err)
	}
	ready := func() metav1.ConditionStatus {
		node := &corev1alpha1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: "n1"}, node); err != nil {
			t.Fatal(err)
		}
		return meta.FindStatusCondition(node.Status.Conditions, conditions.Ready).Status
	}
	if got := ready(); got != metav1.ConditionTrue {
		t.Fatalf("registered node Ready=%s", got)
	}
	cut.Store(true)
	go n.Run(ctx)
	time.Sleep(100 * time.Millisecond)
	// The node lifecycle controller's write.
	node := &corev1alpha1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: "n1"}, node); err != nil {
		t.Fatal(err)
	}
	meta.SetStatusCondition(&node.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionUnknown, Reason: corev1alpha1.ReasonNodeStatusUnknown})
	if err := c.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	cut.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for ready() != metav1.ConditionTrue {
		if time.Now().After(deadline) {
			t.Fatalf("Ready still %s after the agent reached the API server again", ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
