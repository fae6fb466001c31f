// Package containerd starts and owns a containerd for skiff-agent
// (--containerd=managed): it writes a configuration that works on hosts
// like skiff's build machines (restrict_oom_score_adj, a CNI bridge for the
// node's pod CIDR, plain HTTP for loopback registries), keeps root, state
// and socket under the agent's root directory, and imports a sandbox image
// built from skiff's own pause binary, so no registry is needed. It also
// builds and imports images from files, which tests use. It must not touch
// a containerd it did not start.
package containerd
