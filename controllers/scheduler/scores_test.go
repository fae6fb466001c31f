package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// scoreResults returns one score plugin's normalized scores per node.
func scoreResults(c *Cache, pi *podInfo, plugin string) map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.prepareLocked(pi, volumeInfo{})
	for _, s := range scorers {
		if s.name != plugin {
			continue
		}
		scores := make([]int64, len(c.order))
		for i, ni := range c.order {
			scores[i] = s.score(cs, ni)
		}
		if s.normalize != nil {
			s.normalize(scores)
		}
		out := map[string]int64{}
		for i, ni := range c.order {
			out[ni.name] = scores[i]
		}
		return out
	}
	panic("no score plugin " + plugin)
}

func TestScores(t *testing.T) {
	tests := []struct {
		name   string
		plugin string
		nodes  []*corev1alpha1.Node
		pods   []*corev1alpha1.Pod
		pod    *corev1alpha1.Pod
		want   map[string]int64
	}{{
		name:   "least allocated prefers the emptier node",
		plugin: "NodeResourcesFit",
		nodes:  []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "4", "memory", "4Gi").Obj(), MakeNode("n2").Cap("cpu", "4", "memory", "4Gi").Obj()},
		pods:   []*corev1alpha1.Pod{MakePod("old", "ns").Node("n1").Req("cpu", "2", "memory", "2Gi").Obj()},
		pod:    MakePod("p", "ns").Req("cpu", "1", "memory", "1Gi").Obj(),
		// n1: cpu (4-3)/4=25, mem 25 -> 25; n2: 75.
		want: map[string]int64{"n1": 25, "n2": 75},
	}, {
		name:   "least allocated counts 100m and 200Mi for pods without requests",
		plugin: "NodeResourcesFit",
		nodes:  []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1", "memory", "2000Mi").Obj()},
		pod:    MakePod("p", "ns").Obj(),
		// cpu (1000-100)*100/1000 = 90; mem (2000-200)*100/2000 = 90.
		want: map[string]int64{"n1": 90},
	}, {
		name:   "balanced allocation prefers equal cpu and memory fractions",
		plugin: "NodeResourcesBalancedAllocation",
		nodes:  []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "4", "memory", "4Gi").Obj(), MakeNode("n2").Cap("cpu", "4", "memory", "4Gi").Obj()},
		pods:   []*corev1alpha1.Pod{MakePod("old", "ns").Node("n1").Req("cpu", "2").Obj()},
		pod:    MakePod("p", "ns").Req("cpu", "1", "memory", "1Gi").Obj(),
		// n1: cpu 0.75, mem 0.25 -> std 0.25 -> 75; n2: 0.25/0.25 -> 100.
		want: map[string]int64{"n1": 75, "n2": 100},
	}, {
		name:   "preferred node affinity by weight",
		plugin: "NodeAffinity",
		nodes:  []*corev1alpha1.Node{MakeNode("n1").Labels("disk", "ssd").Obj(), MakeNode("n2").Labels("disk", "hdd").Obj(), MakeNode("n3").Obj()},
		pod:    MakePod("p", "ns").PreferredNodeAffinity(10, "disk", "ssd").PreferredNodeAffinity(5, "disk", "hdd").Obj(),
		want:   map[string]int64{"n1": 100, "n2": 50, "n3": 0},
	}, {
		name:   "preferred pod affinity and anti-affinity",
		plugin: "InterPodAffinity",
		nodes:  []*corev1alpha1.Node{zone(MakeNode("n1"), "a"), zone(MakeNode("n2"), "b"), zone(MakeNode("n3"), "c")},
		pods: []*corev1alpha1.Pod{
			MakePod("cache", "ns").Node("n1").Labels("app", "cache").Obj(),
			MakePod("noisy", "ns").Node("n2").Labels("app", "noisy").Obj(),
		},
		pod: MakePod("p", "ns").
			PreferredPodAffinity(10, term(corev1.LabelTopologyZone, "app", "cache")).
			PreferredPodAntiAffinity(10, term(corev1.LabelTopologyZone, "app", "noisy")).Obj(),
		// raw: n1 10, n2 -10, n3 0; min-max normalized.
		want: map[string]int64{"n1": 100, "n2": 0, "n3": 50},
	}, {
		name:   "existing pods' preferred anti-affinity repels the pod",
		plugin: "InterPodAffinity",
		nodes:  []*corev1alpha1.Node{MakeNode("n1").Obj(), MakeNode("n2").Obj()},
		pods:   []*corev1alpha1.Pod{MakePod("shy", "ns").Node("n1").PreferredPodAntiAffinity(5, term(corev1.LabelHostname, "app", "web")).Obj()},
		pod:    MakePod("p", "ns").Labels("app", "web").Obj(),
		want:   map[string]int64{"n1": 0, "n2": 100},
	}, {
		name:   "topology spread ScheduleAnyway prefers the emptier zone",
		plugin: "PodTopologySpread",
		nodes:  []*corev1alpha1.Node{zone(MakeNode("n1"), "a"), zone(MakeNode("n2"), "b"), MakeNode("n3").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("w1", "ns").Node("n1").Labels("app", "web").Obj(),
			MakePod("w2", "ns").Node("n1").Labels("app", "web").Obj(),
		},
		pod: MakePod("w3", "ns").Labels("app", "web").Spread(1, corev1.LabelTopologyZone, corev1.ScheduleAnyway, "app", "web").Obj(),
		// raw: n1 2*ln(4)=2.77->3, n2 0; n3 lacks the key.
		want: map[string]int64{"n1": 0, "n2": 100, "n3": 0},
	}, {
		name:   "PreferNoSchedule taints lower the score unless tolerated",
		plugin: "TaintToleration",
		nodes: []*corev1alpha1.Node{
			MakeNode("n1").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Taint("b", "1", corev1.TaintEffectPreferNoSchedule).Obj(),
			MakeNode("n2").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Taint("c", "1", corev1.TaintEffectPreferNoSchedule).Obj(),
			MakeNode("n3").Obj(),
		},
		pod:  MakePod("p", "ns").Toleration(corev1.Toleration{Key: "c", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectPreferNoSchedule}).Obj(),
		want: map[string]int64{"n1": 0, "n2": 50, "n3": 100},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scoreResults(cacheWith(tt.nodes, tt.pods), newPodInfo(tt.pod), tt.plugin)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSelectHostSpreadsPods(t *testing.T) {
	c := cacheWith([]*corev1alpha1.Node{MakeNode("n1").Obj(), MakeNode("n2").Obj(), MakeNode("n3").Obj()}, nil)
	perNode := map[string]int{}
	for i := 0; i < 9; i++ {
		node, fe, _ := c.schedule(MakePod(string(rune('a'+i)), "ns").Req("cpu", "100m", "memory", "100Mi").Info(), volumeInfo{}, time.Now())
		if fe != nil {
			t.Fatalf("pod %d: %v", i, fe)
		}
		perNode[node]++
	}
	if diff := cmp.Diff(map[string]int{"n1": 3, "n2": 3, "n3": 3}, perNode); diff != "" {
		t.Errorf("pods per node (-want +got):\n%s", diff)
	}
}
