package pods

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// podStartDuration follows upstream kubelet_pod_start_duration_seconds: from
// the agent first seeing a pod to reporting it Running (image pulls, sandbox
// and init containers included).
var podStartDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
	Name:    "skiff_agent_pod_start_duration_seconds",
	Help:    "Duration from the agent first seeing a pod to reporting it Running.",
	Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 6, 8, 10, 20, 30, 45, 60, 120, 180, 240, 300, 360, 480, 600},
})

func init() {
	metrics.Registry.MustRegister(podStartDuration)
}

// observePodStart records the start duration when st is the first status
// this agent writes with phase Running for a pod it saw start; a pod that
// was already Running when the agent met it (after a restart) is not
// counted.
func observePodStart(ps *podState, pod *corev1alpha1.Pod, st corev1alpha1.PodStatus, now time.Time) {
	if st.Phase != corev1.PodRunning || pod.Status.Phase == corev1.PodRunning || ps.seen.IsZero() {
		return
	}
	if ps.status != nil && ps.status.Phase == corev1.PodRunning {
		return
	}
	podStartDuration.Observe(now.Sub(ps.seen).Seconds())
}
