// Package volume holds the storage controllers of skiff-controller-manager,
// the counterparts of upstream's persistent volume controller
// (pkg/controller/volume/persistentvolume) and its protection controllers:
//
//   - the claim controller (claim_controller.go) binds each
//     PersistentVolumeClaim to the smallest Available PersistentVolume that
//     satisfies it (match.go), honours pre-binding through spec.volumeName
//     and a volume's claimRef, asks the node's agent to provision a
//     skiff.dev/local-path volume when none matches, picks the node of a
//     WaitForFirstConsumer claim from the first scheduled pod that uses it,
//     and holds the kubernetes.io/pvc-protection finalizer while a pod uses
//     the claim;
//   - the volume controller (volume_controller.go) keeps each
//     PersistentVolume's phase (Available, Bound, Released, Failed),
//     releases a volume whose claim is gone, applies its reclaim policy and
//     holds the kubernetes.io/pv-protection finalizer while it is bound;
//   - the claim admission webhook (claim_webhook.go) refuses resizes that
//     the claim's StorageClass does not allow.
//
// Binding is two-sided and written in upstream's order, so that a manager
// that stops half-way finishes it on restart: the volume's claimRef first,
// then the volume's phase, then the claim's spec.volumeName, then the
// claim's status.
//
// The package writes PersistentVolumes and PersistentVolumeClaims only. It
// must not create directories or PersistentVolumes of provisioned volumes:
// the agent of the chosen node does (agent/localpath).
package volume
