// Package podstatus writes the status of skiff Pods for every writer (the
// pod's agent, the scheduler, taint eviction, eviction), as upstream's
// PatchPodStatus: a merge patch of the status subresource whose
// resourceVersion is a precondition, so a status another writer posted
// meanwhile is never overwritten.
package podstatus

import (
	"context"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Patch applies mutate to the pod's status and patches the difference with
// the pod's resourceVersion as precondition. On a conflict it reads the pod
// afresh through reader (uncached, so the retry sees the write that won)
// and applies mutate again, at most retry.DefaultBackoff's steps. mutate
// may leave the status unchanged: nothing is written then. On success pod
// holds the stored pod, so a following write can use its resourceVersion.
func Patch(ctx context.Context, reader client.Reader, status client.SubResourceWriter, pod *corev1alpha1.Pod, mutate func(*corev1alpha1.Pod)) error {
	first := true
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		if !first {
			fresh := &corev1alpha1.Pod{}
			if err := reader.Get(ctx, client.ObjectKeyFromObject(pod), fresh); err != nil {
				return err
			}
			fresh.DeepCopyInto(pod)
		}
		first = false
		return PatchOnce(ctx, status, pod, mutate)
	})
}

// PatchOnce is Patch without the retry: a conflict is returned, for
// callers whose decision rests on the pod as they read it.
func PatchOnce(ctx context.Context, status client.SubResourceWriter, pod *corev1alpha1.Pod, mutate func(*corev1alpha1.Pod)) error {
	orig := pod.DeepCopy()
	mutate(pod)
	if equality.Semantic.DeepEqual(orig.Status, pod.Status) {
		return nil
	}
	return status.Patch(ctx, pod, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
}
