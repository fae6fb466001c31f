// Package bench holds the scenario benchmarks of `make bench`: skiff's
// controllers, scheduler and simulated nodes against the upstream ones
// (kube-scheduler, kube-controller-manager, kwok) built from the same
// Kubernetes source, on the same API server, in the same run. Each
// benchmark prints its figures and the skiff/upstream ratio.
package bench
