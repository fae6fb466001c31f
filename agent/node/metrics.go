package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// leaseRenewals counts node heartbeats: writes of the node's Lease, by
// result. The node lifecycle controller marks a node Unknown when they stop.
var leaseRenewals = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "skiff_agent_node_lease_renewals_total",
	Help: "Node heartbeats (creations and renewals of node Leases) by result: success or error.",
}, []string{"result"})

func init() {
	metrics.Registry.MustRegister(leaseRenewals)
}

// observeLeaseRenewal counts a heartbeat and returns its error unchanged.
func observeLeaseRenewal(err error) error {
	result := "success"
	if err != nil {
		result = "error"
	}
	leaseRenewals.WithLabelValues(result).Inc()
	return err
}
