package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func requestedCPU(c *Cache, node string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ni := c.nodes[node]; ni != nil {
		return ni.requested.milliCPU
	}
	return -1
}

func TestCacheAssumedPods(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name    string
		run     func(c *Cache, pi *podInfo)
		wantCPU int64
		wantHas bool
	}{
		{"assumed pod counts at once", func(c *Cache, pi *podInfo) {}, 1000, true},
		{"forgotten after a failed binding", func(c *Cache, pi *podInfo) { c.Forget(pi.key) }, 0, false},
		{"confirmed by the watch", func(c *Cache, pi *podInfo) {
			c.FinishBinding(pi.key, t0)
			c.UpsertPod(MakePod("p", "ns").Node("n1").Req("cpu", "1").Obj())
			c.Expire(t0.Add(time.Hour))
		}, 1000, true},
		{"expires when the watch never confirms", func(c *Cache, pi *podInfo) {
			c.FinishBinding(pi.key, t0)
			c.Expire(t0.Add(assumedPodTTL + time.Second))
		}, 0, false},
		{"does not expire while binding", func(c *Cache, pi *podInfo) { c.Expire(t0.Add(time.Hour)) }, 1000, true},
		{"a finished pod frees its node", func(c *Cache, pi *podInfo) {
			p := MakePod("p", "ns").Node("n1").Req("cpu", "1").Obj()
			p.Status.Phase = corev1.PodFailed
			c.UpsertPod(p)
		}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cacheWith([]*corev1alpha1.Node{MakeNode("n1").Obj()}, nil)
			pi := MakePod("p", "ns").Req("cpu", "1").Info()
			c.mu.Lock()
			c.assumeLocked(pi, "n1")
			c.mu.Unlock()
			tt.run(c, pi)
			if got := requestedCPU(c, "n1"); got != tt.wantCPU {
				t.Errorf("requested cpu %dm, want %dm", got, tt.wantCPU)
			}
			if got := c.IsAssumedOrBound(pi.key); got != tt.wantHas {
				t.Errorf("IsAssumedOrBound = %v, want %v", got, tt.wantHas)
			}
		})
	}
}

func TestNodeSchedulingChanged(t *testing.T) {
	base := MakeNode("n1").Obj()
	tests := []struct {
		name   string
		mutate func(n *corev1alpha1.Node)
		want   bool
	}{
		{"heartbeat-only status change", func(n *corev1alpha1.Node) { n.Status.DisplayStatus = "Ready" }, false},
		{"label", func(n *corev1alpha1.Node) { n.Labels["disk"] = "ssd" }, true},
		{"taint", func(n *corev1alpha1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}
		}, true},
		{"cordon", func(n *corev1alpha1.Node) { n.Spec.Unschedulable = true }, true},
		{"allocatable", func(n *corev1alpha1.Node) { n.Status.Allocatable = nil }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base.DeepCopy()
			tt.mutate(n)
			if got := nodeSchedulingChanged(base, n); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestResponsible(t *testing.T) {
	got := map[string]bool{}
	for _, name := range []string{"", "default-scheduler", "skiff-scheduler", "other"} {
		got[name] = responsible(withScheduler(MakePod("p", "ns").Obj(), name))
	}
	want := map[string]bool{"": true, "default-scheduler": true, "skiff-scheduler": true, "other": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func withScheduler(p *corev1alpha1.Pod, name string) *corev1alpha1.Pod {
	p.Spec.SchedulerName = name
	return p
}
