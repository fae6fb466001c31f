package proxy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// syncDuration follows upstream kubeproxy_sync_proxy_rules_duration_seconds.
	syncDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "skiff_proxy_sync_duration_seconds",
		Help:    "Duration of one full sync of the service proxy's nftables ruleset.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	syncErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "skiff_proxy_sync_errors_total",
		Help: "Syncs of the service proxy's ruleset that nftables refused.",
	})
	lastSync = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "skiff_proxy_last_sync_timestamp_seconds",
		Help: "When the service proxy last applied its ruleset successfully (Unix time).",
	})
)

func init() {
	metrics.Registry.MustRegister(syncDuration, syncErrors, lastSync)
}

// observeSync records one sync that started at start.
func observeSync(start time.Time, err error) {
	syncDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		syncErrors.Inc()
		return
	}
	lastSync.SetToCurrentTime()
}
