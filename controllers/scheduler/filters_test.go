package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// filterResults runs every filter for the pod on every cached node and
// returns the failing nodes' reasons.
func filterResults(c *Cache, pi *podInfo, vol volumeInfo) map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := c.prepareLocked(pi, vol)
	out := map[string][]string{}
	for _, ni := range c.order {
		if reasons, _ := runFiltersWithNominated(cs, ni); len(reasons) > 0 {
			out[ni.name] = reasons
		}
	}
	return out
}

func zone(b *nodeBuilder, z string) *corev1alpha1.Node {
	return b.Labels(corev1.LabelTopologyZone, z).Obj()
}

func TestFilters(t *testing.T) {
	noExec := corev1.TaintEffectNoExecute
	noSched := corev1.TaintEffectNoSchedule
	tests := []struct {
		name  string
		nodes []*corev1alpha1.Node
		pods  []*corev1alpha1.Pod
		pod   *corev1alpha1.Pod
		vol   volumeInfo
		want  map[string][]string
	}{{
		name:  "pod with nodeName fits only that node",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Obj(), MakeNode("n2").Obj()},
		pod:   MakePod("p", "ns").Node("n2").Obj(),
		want:  map[string][]string{"n1": {reasonNodeName}},
	}, {
		name:  "cordoned node",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cordon().Obj(), MakeNode("n2").Obj()},
		pod:   MakePod("p", "ns").Obj(),
		want:  map[string][]string{"n1": {reasonUnschedulable}},
	}, {
		name:  "cordoned node tolerated",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cordon().Obj()},
		pod:   MakePod("p", "ns").Toleration(corev1.Toleration{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists}).Obj(),
		want:  map[string][]string{},
	}, {
		name:  "insufficient cpu and memory",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "500m", "memory", "1Gi").Obj(), MakeNode("n2").Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("old", "ns").Node("n2").Req("cpu", "3500m").Obj()},
		pod:   MakePod("p", "ns").Req("cpu", "1", "memory", "2Gi").Obj(),
		want:  map[string][]string{"n1": {"Insufficient cpu", "Insufficient memory"}, "n2": {"Insufficient cpu"}},
	}, {
		name:  "exact fit",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj()},
		pod:   MakePod("p", "ns").Req("cpu", "1").Obj(),
		want:  map[string][]string{},
	}, {
		name:  "ephemeral storage and extended resources",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("ephemeral-storage", "10Gi", "example.com/gpu", "1").Obj(), MakeNode("n2").Obj()},
		pod:   MakePod("p", "ns").Req("ephemeral-storage", "20Gi", "example.com/gpu", "1").Obj(),
		want:  map[string][]string{"n1": {"Insufficient ephemeral-storage"}, "n2": {"Insufficient ephemeral-storage", "Insufficient example.com/gpu"}},
	}, {
		name:  "pod count",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("pods", "1").Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("old", "ns").Node("n1").Obj()},
		pod:   MakePod("p", "ns").Obj(),
		want:  map[string][]string{"n1": {reasonTooManyPods}},
	}, {
		name:  "init container larger than containers counts",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pod:   MakePod("p", "ns").Req("cpu", "1").InitReq("cpu", "3").Obj(),
		want:  map[string][]string{"n1": {"Insufficient cpu"}},
	}, {
		name:  "init container smaller than containers does not add",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pod:   MakePod("p", "ns").Req("cpu", "2").InitReq("cpu", "1").Obj(),
		want:  map[string][]string{},
	}, {
		name:  "overhead is added",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pod:   MakePod("p", "ns").Req("cpu", "2").Overhead("cpu", "100m").Obj(),
		want:  map[string][]string{"n1": {"Insufficient cpu"}},
	}, {
		name:  "terminal pods hold nothing",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{func() *corev1alpha1.Pod {
			p := MakePod("done", "ns").Node("n1").Req("cpu", "1").Obj()
			p.Status.Phase = corev1.PodSucceeded
			return p
		}()},
		pod:  MakePod("p", "ns").Req("cpu", "1").Obj(),
		want: map[string][]string{},
	}, {
		name:  "nodeSelector",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Labels("disk", "ssd").Obj(), MakeNode("n2").Obj()},
		pod:   MakePod("p", "ns").NodeSelector("disk", "ssd").Obj(),
		want:  map[string][]string{"n2": {reasonNodeAffinity}},
	}, {
		name:  "required node affinity NotIn",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Labels("disk", "ssd").Obj(), MakeNode("n2").Labels("disk", "hdd").Obj()},
		pod:   MakePod("p", "ns").RequiredNodeAffinity("disk", corev1.NodeSelectorOpNotIn, "hdd").Obj(),
		want:  map[string][]string{"n2": {reasonNodeAffinity}},
	}, {
		name: "untolerated NoSchedule and NoExecute taints; PreferNoSchedule ignored",
		nodes: []*corev1alpha1.Node{
			MakeNode("n1").Taint("dedicated", "gpu", noSched).Obj(),
			MakeNode("n2").Taint("evict", "now", noExec).Obj(),
			MakeNode("n3").Taint("soft", "x", corev1.TaintEffectPreferNoSchedule).Obj(),
		},
		pod:  MakePod("p", "ns").Obj(),
		want: map[string][]string{"n1": {"node(s) had untolerated taint {dedicated: gpu}"}, "n2": {"node(s) had untolerated taint {evict: now}"}},
	}, {
		name:  "tolerated taint",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Taint("dedicated", "gpu", noSched).Obj()},
		pod:   MakePod("p", "ns").Toleration(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: noSched}).Obj(),
		want:  map[string][]string{},
	}, {
		name:  "host port conflict; empty protocol is TCP",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Obj(), MakeNode("n2").Obj(), MakeNode("n3").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("a", "ns").Node("n1").HostPort(8080, corev1.ProtocolTCP, "").Obj(),
			MakePod("b", "ns").Node("n2").HostPort(8080, corev1.ProtocolUDP, "").Obj(),
			MakePod("c", "ns").Node("n3").HostPort(8080, "", "10.0.0.1").Obj(),
		},
		pod:  MakePod("p", "ns").HostPort(8080, "", "10.0.0.2").Obj(),
		want: map[string][]string{"n1": {reasonNodePorts}},
	}, {
		name:  "host port on a specific address conflicts with the wildcard",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("a", "ns").Node("n1").HostPort(53, corev1.ProtocolUDP, "10.0.0.1").Obj()},
		pod:   MakePod("p", "ns").HostPort(53, corev1.ProtocolUDP, "0.0.0.0").Obj(),
		want:  map[string][]string{"n1": {reasonNodePorts}},
	}, {
		name:  "required pod affinity: only the zone with a matching pod",
		nodes: []*corev1alpha1.Node{zone(MakeNode("n1"), "a"), zone(MakeNode("n2"), "a"), zone(MakeNode("n3"), "b")},
		pods:  []*corev1alpha1.Pod{MakePod("db", "ns").Node("n1").Labels("app", "db").Obj()},
		pod:   MakePod("p", "ns").PodAffinity(term(corev1.LabelTopologyZone, "app", "db")).Obj(),
		want:  map[string][]string{"n3": {reasonPodAffinity}},
	}, {
		name:  "required pod affinity ignores other namespaces",
		nodes: []*corev1alpha1.Node{zone(MakeNode("n1"), "a")},
		pods:  []*corev1alpha1.Pod{MakePod("db", "other").Node("n1").Labels("app", "db").Obj()},
		pod:   MakePod("p", "ns").PodAffinity(term(corev1.LabelTopologyZone, "app", "db")).Obj(),
		want:  map[string][]string{"n1": {reasonPodAffinity}},
	}, {
		name:  "first pod of a self-affine group goes anywhere with the key",
		nodes: []*corev1alpha1.Node{zone(MakeNode("n1"), "a"), MakeNode("n2").Obj()},
		pod:   MakePod("p", "ns").Labels("app", "web").PodAffinity(term(corev1.LabelTopologyZone, "app", "web")).Obj(),
		want:  map[string][]string{"n2": {reasonPodAffinity}},
	}, {
		name:  "required pod anti-affinity per hostname",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Obj(), MakeNode("n2").Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("web-1", "ns").Node("n1").Labels("app", "web").Obj()},
		pod:   MakePod("web-2", "ns").Labels("app", "web").PodAntiAffinity(term(corev1.LabelHostname, "app", "web")).Obj(),
		want:  map[string][]string{"n1": {reasonPodAntiAffinity}},
	}, {
		name:  "existing pod's anti-affinity keeps the pod out",
		nodes: []*corev1alpha1.Node{zone(MakeNode("n1"), "a"), zone(MakeNode("n2"), "a"), zone(MakeNode("n3"), "b")},
		pods:  []*corev1alpha1.Pod{MakePod("loner", "ns").Node("n1").PodAntiAffinity(term(corev1.LabelTopologyZone, "app", "web")).Obj()},
		pod:   MakePod("p", "ns").Labels("app", "web").Obj(),
		want:  map[string][]string{"n1": {reasonExistingAntiAffinity}, "n2": {reasonExistingAntiAffinity}},
	}, {
		name:  "topology spread DoNotSchedule",
		nodes: []*corev1alpha1.Node{zone(MakeNode("n1"), "a"), zone(MakeNode("n2"), "b"), MakeNode("n3").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("w1", "ns").Node("n1").Labels("app", "web").Obj(),
			MakePod("w2", "ns").Node("n1").Labels("app", "web").Obj(),
			MakePod("w3", "ns").Node("n2").Labels("app", "web").Obj(),
		},
		pod:  MakePod("w4", "ns").Labels("app", "web").Spread(1, corev1.LabelTopologyZone, corev1.DoNotSchedule, "app", "web").Obj(),
		want: map[string][]string{"n1": {reasonSpread}, "n3": {reasonSpreadMissingLabel}},
	}, {
		name:  "topology spread ScheduleAnyway does not filter",
		nodes: []*corev1alpha1.Node{zone(MakeNode("n1"), "a"), zone(MakeNode("n2"), "b")},
		pods:  []*corev1alpha1.Pod{MakePod("w1", "ns").Node("n1").Labels("app", "web").Obj(), MakePod("w2", "ns").Node("n1").Labels("app", "web").Obj()},
		pod:   MakePod("w3", "ns").Labels("app", "web").Spread(1, corev1.LabelTopologyZone, corev1.ScheduleAnyway, "app", "web").Obj(),
		want:  map[string][]string{},
	}, {
		name:  "persistent volume node affinity",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Obj(), MakeNode("n2").Obj()},
		pod:   MakePod("p", "ns").Obj(),
		vol: volumeInfo{affinity: []*corev1.NodeSelector{{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}},
		}}}}},
		want: map[string][]string{"n1": {reasonVolumeNodeAffinity}},
	}, {
		name:  "first failing filter wins: taint before resources",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Taint("dedicated", "gpu", noSched).Obj()},
		pod:   MakePod("p", "ns").Req("cpu", "2").Obj(),
		want:  map[string][]string{"n1": {"node(s) had untolerated taint {dedicated: gpu}"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cacheWith(tt.nodes, tt.pods)
			got := filterResults(c, newPodInfo(tt.pod), tt.vol)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("reasons per node (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNominatedPodsHoldResources(t *testing.T) {
	c := cacheWith([]*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()}, nil)
	c.SetNominated(MakePod("high", "ns").Priority(100).Req("cpu", "2").Info(), "n1")
	tests := []struct {
		name string
		pod  *corev1alpha1.Pod
		want map[string][]string
	}{
		{"lower priority pod must not take the nominated room", MakePod("low", "ns").Priority(1).Req("cpu", "1").Obj(), map[string][]string{"n1": {"Insufficient cpu"}}},
		{"higher priority pod ignores the nomination", MakePod("top", "ns").Priority(1000).Req("cpu", "1").Obj(), map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, filterResults(c, newPodInfo(tt.pod), volumeInfo{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestFitErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  fitError
		want string
	}{
		{"reasons sorted as upstream", fitError{numAllNodes: 3, reasons: map[string]int{"Insufficient cpu": 2, "node(s) had untolerated taint {dedicated: gpu}": 1}},
			"0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."},
		{"no nodes", fitError{numAllNodes: 0, reasons: map[string]int{}}, "0/0 nodes are available: ."},
		{"pre-filter message", fitError{numAllNodes: 2, preFilterMsg: reasonUnboundImmediateClaims},
			"0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestScheduleReportsEveryNode(t *testing.T) {
	c := cacheWith([]*corev1alpha1.Node{
		MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj(),
		MakeNode("n3").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj(),
	}, nil)
	node, fe, _ := c.schedule(MakePod("p", "ns").Req("cpu", "2").Info(), volumeInfo{}, time.Now())
	if node != "" || fe == nil {
		t.Fatalf("got node %q, want a fit error", node)
	}
	want := "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
	if got := fe.Error(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if diff := cmp.Diff([]string{"n1", "n2"}, fe.resolvable); diff != "" {
		t.Errorf("nodes where preemption may help (-want +got):\n%s", diff)
	}
}
