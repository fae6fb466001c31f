// Package podcontrol is the pod-control toolkit shared by every skiff
// controller that creates pods (ReplicaSet, StatefulSet, DaemonSet, Job):
//
//   - Expectations remember the creations and deletions a controller has
//     asked for until the cache has observed them, so that a stale cache
//     never creates or deletes twice (upstream ControllerExpectations and
//     UIDTrackingControllerExpectations).
//   - SlowStartBatch creates in batches of 1, 2, 4, ... so that a template
//     the API refuses fails once, not a thousand times.
//   - Claim adopts orphans that match an owner's selector and releases
//     children that no longer match, as upstream's ControllerRefManager.
//   - SortForDeletion ranks pods the way upstream chooses which pods to
//     delete first on scale down.
//   - NewPodFromTemplate, PodControl and PodEventHandler create pods from a
//     template with a controller reference and feed the expectations from
//     the pod informer.
//
// The package is generic over the owner: it knows owners only as
// client.Object plus a GroupVersionKind. It must not import controllers or
// know any workload kind.
package podcontrol
