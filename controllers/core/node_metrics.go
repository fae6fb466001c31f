package core

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The zone metrics of upstream's node lifecycle controller
// (node_collector_*), under skiff's prefix, labelled by zone as region/zone.
var (
	zoneSize = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skiff_node_collector_zone_size",
		Help: "Nodes counted in each zone.",
	}, []string{"zone"})
	zoneHealthPercent = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skiff_node_collector_zone_health",
		Help: "Percentage of ready nodes in each zone.",
	}, []string{"zone"})
	unhealthyNodes = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "skiff_node_collector_unhealthy_nodes_in_zone",
		Help: "Nodes that are not ready in each zone.",
	}, []string{"zone"})
	noExecuteTaints = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_node_collector_evictions_total",
		Help: "Nodes given a NoExecute taint for not being ready (after which their pods are evicted), by zone.",
	}, []string{"zone"})
)

func init() {
	metrics.Registry.MustRegister(zoneSize, zoneHealthPercent, unhealthyNodes, noExecuteTaints)
}

// recordZone sets a zone's gauges from its counts.
func recordZone(key string, z *zoneHealth) {
	name := zoneName(key)
	total := z.ready + z.notReady
	zoneSize.WithLabelValues(name).Set(float64(total))
	unhealthyNodes.WithLabelValues(name).Set(float64(z.notReady))
	health := 100.0
	if total > 0 {
		health = float64(100*z.ready) / float64(total)
	}
	zoneHealthPercent.WithLabelValues(name).Set(health)
}

// forgetZone drops the gauges of a zone that has no node left.
func forgetZone(key string) {
	name := zoneName(key)
	zoneSize.DeleteLabelValues(name)
	unhealthyNodes.DeleteLabelValues(name)
	zoneHealthPercent.DeleteLabelValues(name)
}
