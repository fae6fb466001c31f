package apps

import (
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	corev1helpers "k8s.io/component-helpers/scheduling/corev1"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// Labels of DaemonSet pods, as upstream.
const (
	// LabelPodTemplateGeneration is upstream's deprecated generation label.
	LabelPodTemplateGeneration = appsv1.DeprecatedTemplateGeneration
	// daemonSetBurst caps the pods one sync creates, as upstream (250).
	daemonSetBurst = 250
)

// The taints every DaemonSet pod tolerates, as upstream's
// AddOrUpdateDaemonPodTolerations: daemons keep running on nodes that are
// not ready, unreachable, under pressure or cordoned.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

var hostNetworkToleration = corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}

// daemonPodSpec returns the template's spec with the default daemon
// tolerations and, when node is set, pinned to it by required node affinity
// on metadata.name (replacing the template's required terms, which the node
// was already checked against), as upstream.
func daemonPodSpec(template *corev1.PodTemplateSpec, node string) *corev1.PodSpec {
	spec := template.Spec.DeepCopy()
	defaults := daemonTolerations
	if spec.HostNetwork {
		defaults = append(append([]corev1.Toleration(nil), daemonTolerations...), hostNetworkToleration)
	}
	for _, t := range defaults {
		spec.Tolerations = addOrUpdateToleration(spec.Tolerations, t)
	}
	if node != "" {
		term := corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{
			Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}
		if spec.Affinity == nil {
			spec.Affinity = &corev1.Affinity{}
		}
		if spec.Affinity.NodeAffinity == nil {
			spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
		}
		spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{term}}
	}
	return spec
}

func addOrUpdateToleration(ts []corev1.Toleration, t corev1.Toleration) []corev1.Toleration {
	for i := range ts {
		if ts[i].Key == t.Key && ts[i].Effect == t.Effect && ts[i].Operator == t.Operator {
			ts[i] = t
			return ts
		}
	}
	return append(ts, t)
}

// nodeShouldRunDaemonPod tells whether a daemon pod should be placed on
// node (shouldRun) and whether one already there may stay
// (shouldContinueRunning), as upstream: the node must match the template's
// nodeName, nodeSelector and required node affinity; untolerated NoSchedule
// taints keep new pods off, untolerated NoExecute taints evict.
func nodeShouldRunDaemonPod(node *corev1alpha1.Node, ds *appsv1alpha1.DaemonSet) (shouldRun, shouldContinueRunning bool) {
	if ds.Spec.Template.Spec.NodeName != "" && ds.Spec.Template.Spec.NodeName != node.Name {
		return false, false
	}
	spec := daemonPodSpec(&ds.Spec.Template, "")
	pod := &corev1.Pod{Spec: *spec}
	n := &corev1.Node{ObjectMeta: node.ObjectMeta, Spec: node.Spec}
	fits, err := nodeaffinity.GetRequiredNodeAffinity(pod).Match(n)
	if err != nil || !fits {
		return false, false
	}
	logger := klog.Background()
	taints := node.Spec.Taints
	_, untolerated := corev1helpers.FindMatchingUntoleratedTaint(logger, taints, spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute || t.Effect == corev1.TaintEffectNoSchedule
	}, true)
	if !untolerated {
		return true, true
	}
	_, untoleratedNoExecute := corev1helpers.FindMatchingUntoleratedTaint(logger, taints, spec.Tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute
	}, true)
	return false, !untoleratedNoExecute
}

// daemonPodNode is the node a daemon pod is on or pinned to.
func daemonPodNode(pod *corev1alpha1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range term.MatchFields {
				if f.Key == metav1.ObjectNameField && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
					return f.Values[0]
				}
			}
		}
	}
	return ""
}

// podsByNode groups pods that are not being deleted by daemonPodNode.
func podsByNode(pods []*corev1alpha1.Pod) map[string][]*corev1alpha1.Pod {
	out := map[string][]*corev1alpha1.Pod{}
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		out[daemonPodNode(p)] = append(out[daemonPodNode(p)], p)
	}
	for _, ps := range out {
		sort.SliceStable(ps, func(i, j int) bool {
			a, b := ps[i].CreationTimestamp, ps[j].CreationTimestamp
			if a.Equal(&b) {
				return ps[i].Name < ps[j].Name
			}
			return a.Before(&b)
		})
	}
	return out
}

func isDaemonPodUpdated(pod *corev1alpha1.Pod, hash string) bool {
	return pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey] == hash
}

func daemonMaxSurge(ds *appsv1alpha1.DaemonSet) *intstr.IntOrString {
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		return ru.MaxSurge
	}
	return nil
}

// daemonPlan is what one DaemonSet sync does: create a pod on each of
// createOn, delete each of del.
type daemonPlan struct {
	createOn []string
	del      []*corev1alpha1.Pod
	// failed are the failed pods among del, reported in events.
	failed []*corev1alpha1.Pod
}

// planDaemonPods decides, per node, which daemon pods to create and
// delete, as upstream's podsShouldBeOnNode: a pod where one should run and
// none does; failed pods removed; duplicates removed (keeping the oldest,
// or with surge the oldest updated and the oldest old one); pods off nodes
// that should not run them or that no longer exist.
func planDaemonPods(ds *appsv1alpha1.DaemonSet, nodes []*corev1alpha1.Node, byNode map[string][]*corev1alpha1.Pod, hash string) daemonPlan {
	var plan daemonPlan
	surge := isRollingDaemonSet(ds) && daemonMaxSurge(ds) != nil && daemonMaxSurge(ds).String() != "0" && daemonMaxSurge(ds).String() != "0%"
	known := map[string]bool{}
	for _, node := range nodes {
		known[node.Name] = true
		shouldRun, shouldContinue := nodeShouldRunDaemonPod(node, ds)
		pods := byNode[node.Name]
		switch {
		case shouldRun && len(pods) == 0:
			plan.createOn = append(plan.createOn, node.Name)
		case shouldContinue:
			var running []*corev1alpha1.Pod
			for _, p := range pods {
				if p.Status.Phase == corev1.PodFailed {
					plan.del = append(plan.del, p)
					plan.failed = append(plan.failed, p)
					continue
				}
				running = append(running, p)
			}
			if len(running) == 0 && shouldRun && len(pods) > 0 {
				// Every pod here failed: replace after the deletion is observed.
				continue
			}
			if !surge {
				if len(running) > 1 {
					plan.del = append(plan.del, running[1:]...)
				}
				continue
			}
			var newest, oldest bool
			for _, p := range running {
				if isDaemonPodUpdated(p, hash) {
					if !newest {
						newest = true
						continue
					}
				} else if !oldest {
					oldest = true
					continue
				}
				plan.del = append(plan.del, p)
			}
		default:
			plan.del = append(plan.del, pods...)
		}
	}
	// Pods bound or pinned to nodes that are gone.
	names := make([]string, 0, len(byNode))
	for name := range byNode {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !known[name] {
			plan.del = append(plan.del, byNode[name]...)
		}
	}
	return plan
}

func isRollingDaemonSet(ds *appsv1alpha1.DaemonSet) bool {
	return ds.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType
}

// daemonRollingBudget returns maxSurge and maxUnavailable as numbers of
// nodes for desired nodes, both rounded up, with one unavailable when both
// are zero, as upstream's updatedDesiredNodeCounts.
func daemonRollingBudget(ds *appsv1alpha1.DaemonSet, desired int) (surge, unavailable int) {
	one := intstr.FromInt32(1)
	zero := intstr.FromInt32(0)
	mu, ms := &one, &zero
	if ru := ds.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		if ru.MaxUnavailable != nil {
			mu = ru.MaxUnavailable
		}
		if ru.MaxSurge != nil {
			ms = ru.MaxSurge
		}
	}
	unavailable, _ = intstr.GetScaledValueFromIntOrPercent(mu, desired, true)
	surge, _ = intstr.GetScaledValueFromIntOrPercent(ms, desired, true)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// updatedAndOld returns the one updated and the one old pod on a node;
// ok is false when there are several of a kind (planDaemonPods fixes that first).
func updatedAndOld(pods []*corev1alpha1.Pod, hash string) (updated, old *corev1alpha1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil {
			continue
		}
		if isDaemonPodUpdated(p, hash) {
			if updated != nil {
				return nil, nil, false
			}
			updated = p
		} else {
			if old != nil {
				return nil, nil, false
			}
			old = p
		}
	}
	return updated, old, true
}

// planDaemonRollingUpdate decides which old pods to delete and on which
// nodes to surge new ones, as upstream's rollingUpdate: without surge, old
// pods are deleted while fewer than maxUnavailable nodes lack an available
// pod (unavailable old pods always may go); with surge, new pods start next
// to old ones on up to maxSurge nodes and old ones go once the new is available.
func planDaemonRollingUpdate(ds *appsv1alpha1.DaemonSet, desired int, byNode map[string][]*corev1alpha1.Pod, hash string, now time.Time) daemonPlan {
	maxSurgeN, maxUnavailableN := daemonRollingBudget(ds, desired)
	names := make([]string, 0, len(byNode))
	for name := range byNode {
		names = append(names, name)
	}
	sort.Strings(names)
	available := func(p *corev1alpha1.Pod) bool { return podutil.IsAvailable(p, ds.Spec.MinReadySeconds, now) }
	var plan daemonPlan
	if maxSurgeN == 0 {
		unavailable := 0
		var allowed, candidates []*corev1alpha1.Pod
		for _, name := range names {
			updated, old, ok := updatedAndOld(byNode[name], hash)
			if !ok {
				unavailable++
				continue
			}
			switch {
			case (old == nil) == (updated == nil):
				unavailable++
			case updated != nil:
				if !available(updated) {
					unavailable++
				}
			case !available(old):
				// Replacing it costs no availability, but its node is
				// unavailable already and counts against the budget.
				allowed = append(allowed, old)
				unavailable++
			case unavailable >= maxUnavailableN:
			default:
				candidates = append(candidates, old)
			}
		}
		remaining := min(max(maxUnavailableN-unavailable, 0), len(candidates))
		plan.del = append(allowed, candidates[:remaining]...)
		return plan
	}
	surged := 0
	var allowed, candidates []string
	for _, name := range names {
		updated, old, ok := updatedAndOld(byNode[name], hash)
		if !ok || old == nil {
			continue
		}
		switch {
		case updated == nil && !available(old):
			allowed = append(allowed, name)
		case updated == nil && surged >= maxSurgeN:
		case updated == nil:
			candidates = append(candidates, name)
		case !available(updated):
			surged++
		default:
			plan.del = append(plan.del, old)
		}
	}
	remaining := min(max(maxSurgeN-surged, 0), len(candidates))
	plan.createOn = append(allowed, candidates[:remaining]...)
	return plan
}

// daemonSetStatus computes the counters of a DaemonSet as upstream's
// updateDaemonSetStatus, looking at the oldest pod on each node.
func daemonSetStatus(ds *appsv1alpha1.DaemonSet, nodes []*corev1alpha1.Node, byNode map[string][]*corev1alpha1.Pod, hash string, now time.Time) appsv1alpha1.DaemonSetStatus {
	st := *ds.Status.DeepCopy()
	var desired, current, misscheduled, ready, available, updated int32
	for _, node := range nodes {
		shouldRun, _ := nodeShouldRunDaemonPod(node, ds)
		pods := byNode[node.Name]
		if !shouldRun {
			if len(pods) > 0 {
				misscheduled++
			}
			continue
		}
		desired++
		if len(pods) == 0 {
			continue
		}
		current++
		pod := pods[0]
		if podutil.IsReady(pod) {
			ready++
			if podutil.IsAvailable(pod, ds.Spec.MinReadySeconds, now) {
				available++
			}
		}
		if isDaemonPodUpdated(pod, hash) {
			updated++
		}
	}
	st.DesiredNumberScheduled = desired
	st.CurrentNumberScheduled = current
	st.NumberMisscheduled = misscheduled
	st.NumberReady = ready
	st.NumberAvailable = available
	st.UpdatedNumberScheduled = updated
	st.NumberUnavailable = desired - available
	st.ObservedGeneration = ds.Generation

	s := summary{ready: updated == desired && available == desired && current == desired && misscheduled == 0,
		message: strconv.Itoa(int(available)) + " of " + strconv.Itoa(int(desired)) + " daemon pods available, " + strconv.Itoa(int(updated)) + " updated"}
	setSummary(&st.Conditions, ds.Generation, s)
	return st
}
