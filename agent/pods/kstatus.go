package pods

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// setProgress adds the kstatus conditions to a pod status whose Ready
// condition is set: a ready or succeeded pod is done, a failed one is
// stalled (it will not run again), any other is reconciling.
func setProgress(st *corev1alpha1.PodStatus) {
	ready := meta.FindStatusCondition(st.Conditions, conditions.Ready)
	if ready == nil {
		return
	}
	p := kstatus.FromReady(*ready)
	switch st.Phase {
	case corev1.PodSucceeded:
		p = kstatus.Done
	case corev1.PodFailed:
		p = kstatus.Stalled
	}
	kstatus.SetProgress(&st.Conditions, p, *ready)
}
