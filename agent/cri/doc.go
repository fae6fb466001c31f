// Package cri is the agent's runtime boundary: the subset of the CRI
// RuntimeService and ImageService that the pod workers use, a connection to
// a real CRI endpoint through k8s.io/cri-client, and the labels the agent
// puts on sandboxes and containers so that it can find them again after a
// restart. It must not know about skiff API objects.
package cri
