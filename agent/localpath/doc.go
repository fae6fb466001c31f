// Package localpath is the skiff.dev/local-path provisioner that runs in
// skiff-agent on each real node. For a claim that skiff-controller-manager
// handed to this node (annotation volume.kubernetes.io/selected-node and
// volume.kubernetes.io/storage-provisioner: skiff.dev/local-path), it
// creates a directory under <agent root>/local-path and a PersistentVolume
// of source local with node affinity to this node, pre-bound to the claim;
// the manager's claim controller then completes the binding. For a
// provisioned volume of this node that is Released with reclaim policy
// Delete, it removes the directory and then the PersistentVolume.
//
// The package creates and deletes PersistentVolumes it provisioned and
// directories under its own root only. It must not bind claims or change
// phases: skiff-controller-manager (controllers/volume) owns those.
package localpath
