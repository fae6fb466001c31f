package podcontrol

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestSortForDeletion(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	tests := map[string]struct {
		pods    []*corev1alpha1.Pod
		related []*corev1alpha1.Pod // nil: the pods themselves
		want    []string
	}{
		"unscheduled before scheduled": {
			pods: []*corev1alpha1.Pod{makePod("scheduled").node("n1").obj(), makePod("unscheduled").obj()},
			want: []string{"unscheduled", "scheduled"},
		},
		"pending before unknown before running": {
			pods: []*corev1alpha1.Pod{
				makePod("running").node("n1").phase(corev1.PodRunning).obj(),
				makePod("unknown").node("n1").phase(corev1.PodUnknown).obj(),
				makePod("pending").node("n1").obj(),
			},
			want: []string{"pending", "unknown", "running"},
		},
		"not ready before ready": {
			pods: []*corev1alpha1.Pod{
				makePod("ready").node("n1").readySince(t0).obj(),
				makePod("running").node("n1").phase(corev1.PodRunning).obj(),
			},
			want: []string{"running", "ready"},
		},
		"lower deletion cost first": {
			pods: []*corev1alpha1.Pod{
				makePod("costly").node("n1").readySince(t0).annotation(AnnotationPodDeletionCost, "100").obj(),
				makePod("cheap").node("n1").readySince(t0).annotation(AnnotationPodDeletionCost, "-5").obj(),
				makePod("default").node("n1").readySince(t0).obj(),
			},
			want: []string{"cheap", "default", "costly"},
		},
		"pods on crowded nodes first": {
			pods: []*corev1alpha1.Pod{
				makePod("alone").node("n1").readySince(t0).obj(),
				makePod("crowded").node("n2").readySince(t0).obj(),
			},
			related: []*corev1alpha1.Pod{
				makePod("alone").node("n1").readySince(t0).obj(),
				makePod("crowded").node("n2").readySince(t0).obj(),
				makePod("sibling").node("n2").readySince(t0).obj(),
			},
			want: []string{"crowded", "alone"},
		},
		"ready for less time first, in log2 buckets": {
			pods: []*corev1alpha1.Pod{
				makePod("old").node("n1").readySince(now.Add(-10 * time.Hour)).obj(),
				makePod("recent").node("n1").readySince(now.Add(-time.Minute)).obj(),
			},
			want: []string{"recent", "old"},
		},
		"same log2 bucket of readiness falls through to UID order": {
			pods: []*corev1alpha1.Pod{
				makePod("b").node("n1").readySince(now.Add(-100 * time.Second)).obj(),
				makePod("a").node("n1").readySince(now.Add(-101 * time.Second)).obj(),
			},
			want: []string{"a", "b"},
		},
		"more restarts first": {
			pods: []*corev1alpha1.Pod{
				makePod("stable").node("n1").phase(corev1.PodRunning).restarts(0).obj(),
				makePod("flappy").node("n1").phase(corev1.PodRunning).restarts(7).obj(),
			},
			want: []string{"flappy", "stable"},
		},
		"newer before older": {
			pods: []*corev1alpha1.Pod{
				makePod("older").node("n1").created(now.Add(-10 * time.Hour)).obj(),
				makePod("newer").node("n1").created(now.Add(-time.Minute)).obj(),
			},
			want: []string{"newer", "older"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			related := tc.related
			if related == nil {
				related = tc.pods
			}
			SortForDeletion(tc.pods, related, now)
			var got []string
			for _, p := range tc.pods {
				got = append(got, p.Name)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
		})
	}
}
