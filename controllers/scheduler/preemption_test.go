package scheduler

import (
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestPreemption(t *testing.T) {
	t0 := time.Unix(1000, 0)
	never := corev1.PreemptNever
	tests := []struct {
		name       string
		nodes      []*corev1alpha1.Node
		pods       []*corev1alpha1.Pod
		pod        *corev1alpha1.Pod
		wantNode   string
		wantVictim []string
	}{{
		name:  "evicts the fewest lowest-priority pods on one node",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj(), MakeNode("n2").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("a", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj(),
			MakePod("b", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj(),
			MakePod("c", "ns").Node("n2").Priority(1).Req("cpu", "2").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
		wantNode: "n2", wantVictim: []string{"ns/c"},
	}, {
		name:  "prefers the node whose most important victim has the lowest priority",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("mid", "ns").Node("n1").Priority(50).Req("cpu", "1").Obj(),
			MakePod("low", "ns").Node("n2").Priority(10).Req("cpu", "1").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n2", wantVictim: []string{"ns/low"},
	}, {
		name:  "reprieves the more important pod",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("more", "ns").Node("n1").Priority(20).Req("cpu", "1").Created(t0).Obj(),
			MakePod("less", "ns").Node("n1").Priority(10).Req("cpu", "1").Created(t0).Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/less"},
	}, {
		name:  "never evicts pods of equal or higher priority",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("same", "ns").Node("n1").Priority(100).Req("cpu", "1").Obj()},
		pod:   MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
	}, {
		name:  "not where removing pods cannot help (taint)",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("low", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj()},
		pod:   MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
	}, {
		name:  "not when evicting everything still does not fit",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("low", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj()},
		pod:   MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
	}, {
		name:     "frees a host port",
		nodes:    []*corev1alpha1.Node{MakeNode("n1").Obj()},
		pods:     []*corev1alpha1.Pod{MakePod("low", "ns").Node("n1").Priority(1).HostPort(80, "", "").Obj()},
		pod:      MakePod("p", "ns").Priority(100).HostPort(80, corev1.ProtocolTCP, "").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/low"},
	}, {
		name:  "preemptionPolicy Never",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("low", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj()},
		pod: func() *corev1alpha1.Pod {
			p := MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj()
			p.Spec.PreemptionPolicy = &never
			return p
		}(),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cacheWith(tt.nodes, tt.pods)
			node, fe, cand := c.schedule(newPodInfo(tt.pod), volumeInfo{})
			if fe == nil {
				t.Fatalf("pod fits on %s without preemption", node)
			}
			var gotNode string
			var gotVictims []string
			if cand != nil {
				gotNode = cand.node
				for _, v := range cand.victims {
					gotVictims = append(gotVictims, v.key)
				}
				sort.Strings(gotVictims)
			}
			if gotNode != tt.wantNode {
				t.Errorf("node %q, want %q", gotNode, tt.wantNode)
			}
			if diff := cmp.Diff(tt.wantVictim, gotVictims); diff != "" {
				t.Errorf("victims (-want +got):\n%s", diff)
			}
		})
	}
}
