// Package proxy is skiff's service proxy. It runs inside skiff-agent on
// every node and programs the ClusterIPs and NodePorts of skiff Services
// into an nftables table of its own (family ip, "skiff-proxy") through
// sigs.k8s.io/knftables: DNAT balanced over ready endpoints, session
// affinity, hairpin and NodePort masquerade, and a reject rule for service
// addresses that match no Service, so such traffic fails at once on the node
// and never leaves it.
//
// The ruleset is a pure function of the Services and EndpointSlices
// (ruleset.go): a few fixed chains and two verdict maps, plus chains, sets
// and map elements owned by each service port and named after it. The
// Proxier (proxier.go) applies changes at a bounded frequency, each sync one
// atomic transaction: a partial sync rewrites only the service ports that
// changed (kube-proxy's nftables partial sync), a full sync (at start, after
// an error, hourly) rewrites all and removes what no port owns. It removes
// the table on shutdown.
// It touches nothing outside its table except two sysctls (ip_forward and
// bridge-nf-call-iptables) and, for UDP, stale conntrack entries.
package proxy
