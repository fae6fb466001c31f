package scheduler

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
)

// budget is a PodDisruptionBudget selecting app=<app> (every pod when app
// is "", through an empty selector, which upstream's preemption reads as
// selecting nothing) that allows the given disruptions; disrupted are pods
// an eviction was granted for already.
func budget(ns, app string, allowed int32, disrupted ...string) *policyv1alpha1.PodDisruptionBudget {
	pdb := &policyv1alpha1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "pdb-" + app, Namespace: ns}}
	pdb.Spec.Selector = &metav1.LabelSelector{}
	if app != "" {
		pdb.Spec.Selector.MatchLabels = map[string]string{"app": app}
	}
	pdb.Status.DisruptionsAllowed = allowed
	for _, name := range disrupted {
		if pdb.Status.DisruptedPods == nil {
			pdb.Status.DisruptedPods = map[string]metav1.Time{}
		}
		pdb.Status.DisruptedPods[name] = metav1.Now()
	}
	return pdb
}

func TestPreemption(t *testing.T) {
	now := time.Unix(10000, 0)
	t0, t1 := now.Add(-time.Hour), now.Add(-time.Minute)
	never := corev1.PreemptNever
	zoneA := func(n string) *nodeBuilder { return MakeNode(n).Labels(corev1.LabelTopologyZone, "a") }
	zoneB := func(n string) *nodeBuilder { return MakeNode(n).Labels(corev1.LabelTopologyZone, "b") }
	onlyN2 := volumeInfo{affinity: []*corev1.NodeSelector{{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}}}}}}
	tests := []struct {
		name       string
		nodes      []*corev1alpha1.Node
		pods       []*corev1alpha1.Pod
		nominated  map[*corev1alpha1.Pod]string // pending pods nominated to nodes
		pdbs       []*policyv1alpha1.PodDisruptionBudget
		pod        *corev1alpha1.Pod
		vol        volumeInfo
		wantNode   string
		wantVictim []string // most important first
		wantLower  []string // lower-priority nominations the preemption overrides
		wantClear  bool
		wantPDB    int // victims whose deletion violates a budget
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
		name:  "then the smallest sum of priorities",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj(), MakeNode("n2").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("a10", "ns").Node("n1").Priority(10).Req("cpu", "1").Obj(),
			MakePod("a9", "ns").Node("n1").Priority(9).Req("cpu", "1").Obj(),
			MakePod("b10", "ns").Node("n2").Priority(10).Req("cpu", "1").Obj(),
			MakePod("b5", "ns").Node("n2").Priority(5).Req("cpu", "1").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
		wantNode: "n2", wantVictim: []string{"ns/b10", "ns/b5"},
	}, {
		name:  "then the fewest victims",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj(), MakeNode("n2").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			// Shifted by MaxInt32+1 as upstream, two pods of -10 weigh
			// more than one, though their raw sum is lower.
			MakePod("a1", "ns").Node("n1").Priority(-10).Req("cpu", "1").Obj(),
			MakePod("a2", "ns").Node("n1").Priority(-10).Req("cpu", "1").Obj(),
			MakePod("b", "ns").Node("n2").Priority(-10).Req("cpu", "2").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
		wantNode: "n2", wantVictim: []string{"ns/b"},
	}, {
		name:  "then the latest start among the most important victims",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("old", "ns").Node("n1").Priority(1).Req("cpu", "1").Started(t0).Obj(),
			MakePod("young", "ns").Node("n2").Priority(1).Req("cpu", "1").Started(t1).Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n2", wantVictim: []string{"ns/young"},
	}, {
		name:  "reprieves the more important pod",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("more", "ns").Node("n1").Priority(20).Req("cpu", "1").Obj(),
			MakePod("less", "ns").Node("n1").Priority(10).Req("cpu", "1").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/less"},
	}, {
		name:  "of equal priority, reprieves the pod that started first",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("young", "ns").Node("n1").Priority(10).Req("cpu", "1").Started(t1).Obj(),
			MakePod("old", "ns").Node("n1").Priority(10).Req("cpu", "1").Started(t0).Obj(),
			MakePod("pending", "ns").Node("n1").Priority(10).Req("cpu", "0").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/young"},
	}, {
		name:  "never evicts pods of equal or higher priority",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj()},
		pods:  []*corev1alpha1.Pod{MakePod("same", "ns").Node("n1").Priority(100).Req("cpu", "1").Obj()},
		pod:   MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		// Nothing to preempt anywhere: a nomination would be stale.
		wantClear: true,
	}, {
		name:      "not where removing pods cannot help (taint)",
		nodes:     []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj()},
		pods:      []*corev1alpha1.Pod{MakePod("low", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj()},
		pod:       MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantClear: true,
	}, {
		name:      "not when evicting everything still does not fit",
		nodes:     []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj()},
		pods:      []*corev1alpha1.Pod{MakePod("low", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj()},
		pod:       MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
		wantClear: true,
	}, {
		name:     "frees a host port",
		nodes:    []*corev1alpha1.Node{MakeNode("n1").Obj()},
		pods:     []*corev1alpha1.Pod{MakePod("low", "ns").Node("n1").Priority(1).HostPort(80, "", "").Obj()},
		pod:      MakePod("p", "ns").Priority(100).HostPort(80, corev1.ProtocolTCP, "").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/low"},
	}, {
		name:  "a host port conflict keeps a victim whose cpu alone would be reprieved",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("port", "ns").Node("n1").Priority(20).HostPort(80, "", "").Obj(),
			MakePod("cpu", "ns").Node("n1").Priority(10).Req("cpu", "2").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").HostPort(80, corev1.ProtocolTCP, "").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/port", "ns/cpu"},
	}, {
		name:  "removes the pod its required anti-affinity rejects, though cpu fits",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Obj(), MakeNode("n2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("batch", "ns").Node("n1").Labels("app", "batch").Priority(1).Obj(),
			MakePod("keep", "ns").Node("n1").Labels("app", "other").Priority(1).Obj(),
			MakePod("important", "ns").Node("n2").Labels("app", "batch").Priority(1000).Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).PodAntiAffinity(term(corev1.LabelHostname, "app", "batch")).Obj(),
		wantNode: "n1", wantVictim: []string{"ns/batch"},
	}, {
		name:  "removes the existing pod whose required anti-affinity rejects the pod",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("loner", "ns").Node("n1").Priority(1).PodAntiAffinity(term(corev1.LabelHostname, "app", "web")).Obj(),
			MakePod("keep", "ns").Node("n1").Priority(1).Obj(),
		},
		pod:      MakePod("p", "ns").Labels("app", "web").Priority(100).Obj(),
		wantNode: "n1", wantVictim: []string{"ns/loner"},
	}, {
		name:  "keeps the pod its required affinity needs and evicts the one in the way",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("db", "ns").Node("n1").Labels("app", "db").Priority(1000).Obj(),
			MakePod("filler", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj(),
			MakePod("other", "ns").Node("n2").Priority(1).Req("cpu", "1").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").PodAffinity(term(corev1.LabelHostname, "app", "db")).Obj(),
		wantNode: "n1", wantVictim: []string{"ns/filler"},
	}, {
		name:  "does not evict the pod its required affinity needs (as upstream, no candidate)",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("db", "ns").Node("n1").Labels("app", "db").Priority(1).Obj(),
			MakePod("filler", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj(),
		},
		pod:       MakePod("p", "ns").Priority(100).Req("cpu", "1").PodAffinity(term(corev1.LabelHostname, "app", "db")).Obj(),
		wantClear: true,
	}, {
		name: "brings a zone back within maxSkew, evicting only what the skew needs",
		nodes: []*corev1alpha1.Node{
			zoneA("na").Obj(),
			zoneB("nb").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj(),
		},
		pods: []*corev1alpha1.Pod{
			MakePod("web-1", "ns").Node("na").Labels("app", "web").Priority(1).Started(t0).Obj(),
			MakePod("web-2", "ns").Node("na").Labels("app", "web").Priority(1).Started(t1).Obj(),
			MakePod("web-b", "ns").Node("nb").Labels("app", "web").Priority(1000).Obj(),
		},
		pod:      MakePod("p", "ns").Labels("app", "web").Priority(100).Spread(1, corev1.LabelTopologyZone, corev1.DoNotSchedule, "app", "web").Obj(),
		wantNode: "na", wantVictim: []string{"ns/web-2"},
	}, {
		name:  "not where the volume's node affinity rules the node out",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("low", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj(),
			MakePod("high", "ns").Node("n2").Priority(1000).Req("cpu", "1").Obj(),
		},
		pod:       MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		vol:       onlyN2,
		wantClear: true,
	}, {
		name:  "only where the volume's node affinity lets the pod run",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("lowest", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj(),
			MakePod("low", "ns").Node("n2").Priority(50).Req("cpu", "1").Obj(),
		},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		vol:      onlyN2,
		wantNode: "n2", wantVictim: []string{"ns/low"},
	}, {
		name:  "room held by a more important nominated pod is not room",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj(), MakeNode("n2").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("a", "ns").Node("n1").Priority(1).Req("cpu", "1").Obj(),
			MakePod("b", "ns").Node("n2").Priority(5).Req("cpu", "2").Obj(),
		},
		nominated: map[*corev1alpha1.Pod]string{MakePod("vip", "ns").Priority(500).Req("cpu", "1").Obj(): "n1"},
		pod:       MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
		wantNode:  "n2", wantVictim: []string{"ns/b"},
	}, {
		name:  "a lower-priority pod nominated to the node loses its nomination",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("a", "ns").Node("n1").Priority(1).Req("cpu", "2").Obj(),
		},
		nominated: map[*corev1alpha1.Pod]string{MakePod("mid", "ns").Priority(50).Req("cpu", "1").Obj(): "n1"},
		pod:       MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
		wantNode:  "n1", wantVictim: []string{"ns/a"}, wantLower: []string{"ns/mid"},
	}, {
		name:  "prefers the node with fewer budget violations over lower-priority victims",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("db-0", "ns").Node("n1").Labels("app", "db").Priority(1).Req("cpu", "1").Obj(),
			MakePod("mid", "ns").Node("n2").Priority(50).Req("cpu", "1").Obj(),
		},
		pdbs:     []*policyv1alpha1.PodDisruptionBudget{budget("ns", "db", 0)},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n2", wantVictim: []string{"ns/mid"},
	}, {
		name:  "violates a budget when every node needs it, and counts the violations",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("db-0", "ns").Node("n1").Labels("app", "db").Priority(1).Req("cpu", "1").Started(t0).Obj(),
			MakePod("db-1", "ns").Node("n1").Labels("app", "db").Priority(1).Req("cpu", "1").Started(t1).Obj(),
		},
		// One disruption allowed: db-0, more important, takes it, db-1 violates.
		pdbs:     []*policyv1alpha1.PodDisruptionBudget{budget("ns", "db", 1)},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/db-0", "ns/db-1"}, wantPDB: 1,
	}, {
		name:  "reprieves the victim a budget protects before a more important one",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("more", "ns").Node("n1").Priority(20).Req("cpu", "1").Obj(),
			MakePod("db-0", "ns").Node("n1").Labels("app", "db").Priority(10).Req("cpu", "1").Obj(),
		},
		pdbs:     []*policyv1alpha1.PodDisruptionBudget{budget("ns", "db", 0)},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/more"},
	}, {
		name:  "victims stay most important first when both groups lose pods",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "2").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("more", "ns").Node("n1").Priority(20).Req("cpu", "1").Obj(),
			MakePod("db-0", "ns").Node("n1").Labels("app", "db").Priority(10).Req("cpu", "1").Obj(),
		},
		pdbs:     []*policyv1alpha1.PodDisruptionBudget{budget("ns", "db", 0)},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "2").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/more", "ns/db-0"}, wantPDB: 1,
	}, {
		name:  "a pod the budget already counts as disrupted is no violation",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("db-0", "ns").Node("n1").Labels("app", "db").Priority(1).Req("cpu", "1").Obj(),
			MakePod("mid", "ns").Node("n2").Priority(50).Req("cpu", "1").Obj(),
		},
		pdbs:     []*policyv1alpha1.PodDisruptionBudget{budget("ns", "db", 0, "db-0")},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/db-0"},
	}, {
		name:  "budgets of another namespace or with an empty selector protect nothing",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("db-0", "ns").Node("n1").Labels("app", "db").Priority(1).Req("cpu", "1").Obj(),
			MakePod("mid", "ns").Node("n2").Priority(50).Req("cpu", "1").Obj(),
		},
		pdbs:     []*policyv1alpha1.PodDisruptionBudget{budget("other", "db", 0), budget("ns", "", 0)},
		pod:      MakePod("p", "ns").Priority(100).Req("cpu", "1").Obj(),
		wantNode: "n1", wantVictim: []string{"ns/db-0"},
	}, {
		name:  "waits while its victims on the nominated node terminate",
		nodes: []*corev1alpha1.Node{MakeNode("n1").Cap("cpu", "1").Obj(), MakeNode("n2").Cap("cpu", "1").Obj()},
		pods: []*corev1alpha1.Pod{
			MakePod("going", "ns").Node("n1").Priority(1).Req("cpu", "1").PreemptedAt(t1).Obj(),
			MakePod("low", "ns").Node("n2").Priority(1).Req("cpu", "1").Obj(),
		},
		pod: MakePod("p", "ns").Priority(100).Req("cpu", "1").Nominated("n1").Obj(),
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
			for _, pdb := range tt.pdbs {
				c.UpsertPDB(pdb)
			}
			for p, node := range tt.nominated {
				c.SetNominated(newPodInfo(p), node)
			}
			pi := newPodInfo(tt.pod)
			node, fe, p := c.schedule(pi, tt.vol, now)
			if fe == nil {
				t.Fatalf("pod fits on %s without preemption", node)
			}
			var gotNode string
			var gotVictims, gotLower []string
			var gotPDB int
			if p.cand != nil {
				gotNode, gotPDB = p.cand.node, p.cand.pdbViolations
				for _, v := range p.cand.victims {
					gotVictims = append(gotVictims, v.key)
				}
				if got := c.nominated[pi.key].node; got != gotNode {
					t.Errorf("cache nominates the pod to %q, want %q", got, gotNode)
				}
			}
			for _, n := range p.lowerNominated {
				gotLower = append(gotLower, n.key)
				if _, still := c.nominated[n.key]; still {
					t.Errorf("%s is still nominated", n.key)
				}
			}
			if gotNode != tt.wantNode {
				t.Errorf("node %q, want %q", gotNode, tt.wantNode)
			}
			if diff := cmp.Diff(tt.wantVictim, gotVictims); diff != "" {
				t.Errorf("victims (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLower, gotLower); diff != "" {
				t.Errorf("nominations overridden (-want +got):\n%s", diff)
			}
			if gotPDB != tt.wantPDB {
				t.Errorf("%d budget violations, want %d", gotPDB, tt.wantPDB)
			}
			if p.clearNomination != tt.wantClear {
				t.Errorf("clearNomination %v, want %v", p.clearNomination, tt.wantClear)
			}
		})
	}
}

// A preemption dry run must not leave its trial changes behind: the
// cluster's counts are what they were, and the next pod sees the victims.
func TestPreemptionLeavesCacheAlone(t *testing.T) {
	c := cacheWith([]*corev1alpha1.Node{MakeNode("n1").Labels(corev1.LabelTopologyZone, "a").Cap("cpu", "1").Obj()},
		[]*corev1alpha1.Pod{MakePod("low", "ns").Node("n1").Labels("app", "web").Priority(1).Req("cpu", "1").HostPort(80, "", "").Obj()})
	before := filterResults(c, MakePod("q", "ns").Req("cpu", "1").Info(), volumeInfo{})
	_, fe, p := c.schedule(MakePod("p", "ns").Priority(100).Req("cpu", "1").HostPort(80, "", "").
		Spread(1, corev1.LabelTopologyZone, corev1.DoNotSchedule, "app", "web").Info(), volumeInfo{}, time.Now())
	if fe == nil || p.cand == nil {
		t.Fatalf("want a preemption, got %v %+v", fe, p)
	}
	after := filterResults(c, MakePod("q", "ns").Req("cpu", "1").Info(), volumeInfo{})
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("filters after the dry run (-before +after):\n%s", diff)
	}
	if n := len(c.nodes["n1"].pods); n != 1 || len(c.nodes["n1"].ports) != 1 {
		t.Errorf("n1 holds %d pods and %d ports, want 1 and 1", n, len(c.nodes["n1"].ports))
	}
}
