package scheduler

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of a scheduling attempt, the label values of the attempt metrics
// (upstream kube-scheduler's scheduler_schedule_attempts_total uses the same).
const (
	resultScheduled     = "scheduled"
	resultUnschedulable = "unschedulable"
	resultError         = "error"
)

var (
	scheduleAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_scheduler_schedule_attempts_total",
		Help: "Scheduling attempts by result: scheduled (bound), unschedulable (no node fits), error (binding failed).",
	}, []string{"result"})
	attemptDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "skiff_scheduler_scheduling_attempt_duration_seconds",
		Help:    "Duration of a scheduling attempt, from popping the pod to binding it or finding that it does not fit, by result.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"result"})
	podSchedulingDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "skiff_scheduler_pod_scheduling_duration_seconds",
		Help:    "Duration from a pod's first entry into the scheduling queue to its binding, across attempts.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 18),
	})
)

func init() {
	metrics.Registry.MustRegister(scheduleAttempts, attemptDuration, podSchedulingDuration)
}

// observeAttempt records one attempt's result and duration; queued is when
// the pod first entered the queue, observed once the pod is bound.
func observeAttempt(result string, took time.Duration, queued time.Time, now time.Time) {
	scheduleAttempts.WithLabelValues(result).Inc()
	attemptDuration.WithLabelValues(result).Observe(took.Seconds())
	if result == resultScheduled && !queued.IsZero() {
		podSchedulingDuration.Observe(now.Sub(queued).Seconds())
	}
}
