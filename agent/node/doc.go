// Package node registers a skiff Node and keeps it alive: it creates the Node
// with capacity, addresses and system info, renews the node's Lease in the
// skiff-node-lease namespace every 10 seconds, and posts the full status when
// it changes or once a minute. The status itself is computed by pure
// functions. It must not touch pods.
package node
