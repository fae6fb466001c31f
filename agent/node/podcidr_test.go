package node

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func TestAwaitPodCIDRRegistersTheNodeAndWaitsForIPAM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := fake.NewClientBuilder().WithScheme(scheme.New()).Build()
	m := Machine{OperatingSystem: "linux", Architecture: "amd64"}
	got := make(chan string, 1)
	go func() {
		cidr, err := AwaitPodCIDR(ctx, c, "n1", m)
		if err != nil {
			t.Error(err)
		}
		got <- cidr
	}()
	// The node IPAM's part: find the registered Node and give it a range.
	n := &corev1alpha1.Node{}
	for c.Get(ctx, client.ObjectKey{Name: "n1"}, n) != nil {
		time.Sleep(20 * time.Millisecond)
	}
	if n.Labels[corev1.LabelHostname] != "n1" || n.Labels[corev1.LabelOSStable] != "linux" {
		t.Errorf("registered with labels %v, want the hostname and OS labels Register sets", n.Labels)
	}
	select {
	case cidr := <-got:
		t.Fatalf("returned %q before the Node had a pod CIDR", cidr)
	case <-time.After(600 * time.Millisecond):
	}
	n.Spec.PodCIDR, n.Spec.PodCIDRs = "10.244.3.0/24", []string{"10.244.3.0/24"}
	if err := c.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	if cidr := <-got; cidr != "10.244.3.0/24" {
		t.Fatalf("AwaitPodCIDR = %q, want 10.244.3.0/24", cidr)
	}
	// A restarted agent finds its range at once.
	if cidr, err := AwaitPodCIDR(ctx, c, "n1", m); err != nil || cidr != "10.244.3.0/24" {
		t.Fatalf("second AwaitPodCIDR = %q, %v", cidr, err)
	}
}

func TestAwaitPodCIDRStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c := fake.NewClientBuilder().WithScheme(scheme.New()).Build()
	if _, err := AwaitPodCIDR(ctx, c, "n1", Machine{}); err == nil {
		t.Fatal("no error when the context ended without a pod CIDR")
	}
}
