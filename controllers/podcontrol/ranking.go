package podcontrol

import (
	"math"
	"sort"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// AnnotationPodDeletionCost is upstream's hint of how costly a pod is to
// delete on scale down; lower goes first.
const AnnotationPodDeletionCost = "controller.kubernetes.io/pod-deletion-cost"

var phaseOrdinal = map[corev1.PodPhase]int{
	corev1.PodPending: 0,
	corev1.PodUnknown: 1,
	corev1.PodRunning: 2,
}

// SortForDeletion orders pods so that the ones to delete first come first,
// as upstream's ActivePodsWithRanks with LogarithmicScaleDown and
// PodDeletionCost (both on by default upstream):
//
//  1. unscheduled before scheduled;
//  2. Pending before Unknown before Running;
//  3. not ready before ready;
//  4. lower pod-deletion-cost before higher;
//  5. pods on nodes crowded with related pods before others (related are the
//     owner's pods and, for a Deployment's ReplicaSets, their siblings');
//  6. when both are ready, the more recently ready first (log2 buckets of
//     age, ties broken by UID);
//  7. more container restarts first;
//  8. newer before older (log2 buckets again).
//
// It sorts pods in place.
func SortForDeletion(pods, related []*corev1alpha1.Pod, now time.Time) {
	onNode := map[string]int{}
	for _, p := range related {
		if podutil.IsActive(p) {
			onNode[p.Spec.NodeName]++
		}
	}
	rank := make(map[*corev1alpha1.Pod]int, len(pods))
	for _, p := range pods {
		rank[p] = onNode[p.Spec.NodeName]
	}
	sort.SliceStable(pods, func(i, j int) bool {
		return deleteBefore(pods[i], pods[j], rank[pods[i]], rank[pods[j]], now)
	})
}

func deleteBefore(a, b *corev1alpha1.Pod, rankA, rankB int, now time.Time) bool {
	if a.Spec.NodeName != b.Spec.NodeName && (a.Spec.NodeName == "" || b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if oa, ob := phaseOrdinal[a.Status.Phase], phaseOrdinal[b.Status.Phase]; oa != ob {
		return oa < ob
	}
	readyA, readyB := podutil.IsReady(a), podutil.IsReady(b)
	if readyA != readyB {
		return !readyA
	}
	if ca, cb := deletionCost(a), deletionCost(b); ca != cb {
		return ca < cb
	}
	if rankA != rankB {
		return rankA > rankB
	}
	if readyA && readyB {
		ta, tb := readySince(a), readySince(b)
		if !ta.Equal(tb) {
			if ta.IsZero() || tb.IsZero() {
				return ta.IsZero()
			}
			if d := logRankDiff(ta, tb, now); d != 0 {
				return d < 0
			}
			return a.UID < b.UID
		}
	}
	if ra, rb := maxRestarts(a), maxRestarts(b); ra != rb {
		return ra > rb
	}
	ta, tb := a.CreationTimestamp.Time, b.CreationTimestamp.Time
	if !ta.Equal(tb) {
		if ta.IsZero() || tb.IsZero() {
			return ta.IsZero()
		}
		if d := logRankDiff(ta, tb, now); d != 0 {
			return d < 0
		}
		return a.UID < b.UID
	}
	return false
}

// logRankDiff compares the base-2 logarithms of the ages of t1 and t2 at
// now; negative when t1 is in a younger bucket.
func logRankDiff(t1, t2, now time.Time) int64 {
	bucket := func(t time.Time) int64 {
		if d := now.Sub(t); d > 0 {
			return int64(math.Log2(float64(d)))
		}
		return -1
	}
	return bucket(t1) - bucket(t2)
}

func deletionCost(p *corev1alpha1.Pod) int32 {
	v, ok := p.Annotations[AnnotationPodDeletionCost]
	if !ok {
		return 0
	}
	c, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0
	}
	return int32(c)
}

func readySince(p *corev1alpha1.Pod) time.Time {
	c := meta.FindStatusCondition(p.Status.Conditions, conditions.Ready)
	if c == nil || c.Status != metav1.ConditionTrue {
		return time.Time{}
	}
	return c.LastTransitionTime.Time
}

func maxRestarts(p *corev1alpha1.Pod) int32 {
	var m int32
	for _, s := range p.Status.ContainerStatuses {
		m = max(m, s.RestartCount)
	}
	return m
}
