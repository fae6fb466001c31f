// Package eviction evicts skiff pods the way the API server's pods/eviction
// subresource evicts core Pods (pkg/registry/core/pod/storage/eviction.go).
// A CustomResource cannot have an eviction subresource, so the client runs
// the same protocol against the policy.skiff.dev PodDisruptionBudget of the
// pod: it checks the budget's status, spends one allowed disruption by
// writing the status back under the resourceVersion it read (a conflict
// means someone else evicted or the controller recomputed: read again and
// retry), records the pod in disruptedPods so the disruption controller does
// not count it healthy until it is gone, and only then deletes the pod.
// Refusals are the API server's errors: 429 TooManyRequests with "Cannot
// evict pod as it would violate the pod's disruption budget." while the
// budget is spent, 500 when several budgets select the pod.
//
// Just before the delete the pod gets DisruptionTarget=True (reason
// EvictionByEvictionAPI, "Eviction API: evicting"), as the API server's
// eviction sets it, so a Job's pod failure policy can tell an eviction from
// a crash.
//
// The package reads pods and budgets and writes budget status, that
// condition and pod deletions; it must not change pods otherwise.
package eviction

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/policy"
	"github.com/skiff-dev/skiff/internal/podstatus"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// MaxDisruptedPodSize is the most disruptedPods entries a budget may hold
// before evictions are refused, upstream's: that many evictions granted
// and not yet seen by the disruption controller means it is not keeping up.
const MaxDisruptedPodSize = 2000

// conflictRetry is upstream's EvictionsRetry: how often a write that lost
// a race is tried again.
var conflictRetry = wait.Backoff{Steps: 20, Duration: 500 * time.Millisecond, Factor: 1.0, Jitter: 0.1}

// Options are the delete options an eviction carries.
type Options struct {
	// GracePeriodSeconds overrides the pod's terminationGracePeriodSeconds.
	GracePeriodSeconds *int64
	// Now is the clock of disruptedPods entries; nil means time.Now.
	Now func() time.Time
}

// Evict evicts the pod namespace/name. It returns nil once the pod is
// being deleted, the pod's NotFound when it is gone, and a 429
// TooManyRequests StatusError (apierrors.IsTooManyRequests) when its
// disruption budget does not allow it now; kubectl drain retries those.
func Evict(ctx context.Context, c client.Client, namespace, name string, opts Options) error {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	// A pod that is finished, pending or already going has disrupted
	// nothing the budget protects: delete it, as upstream's canIgnorePDB,
	// reading it again when it changed under the delete.
	pod := &corev1alpha1.Pod{}
	ignore := false
	err := retry.OnError(conflictRetry, apierrors.IsConflict, func() error {
		if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
			return err
		}
		ignore = podutil.IsTerminal(pod) || pod.Status.Phase == corev1.PodPending || pod.DeletionTimestamp != nil
		if !ignore {
			return nil
		}
		return deletePod(ctx, c, pod, opts, !podutil.IsTerminal(pod) && pod.DeletionTimestamp == nil, "")
	})
	if err != nil || ignore {
		return err
	}
	pdbs, err := budgetsOf(ctx, c, pod)
	if err != nil {
		return err
	}
	switch len(pdbs) {
	case 0:
		return deletePod(ctx, c, pod, opts, false, "")
	case 1:
	default:
		return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: 500,
			Message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."}}
	}
	pdb := &pdbs[0]
	if !podutil.IsReady(pod) {
		// An unhealthy pod does not count towards currentHealthy: evicting it
		// spends nothing when the policy always allows it, or when the budget
		// is met without it. The pod's resourceVersion guards against it
		// turning ready meanwhile.
		alwaysAllow := pdb.Spec.UnhealthyPodEvictionPolicy != nil && *pdb.Spec.UnhealthyPodEvictionPolicy == policyv1.AlwaysAllow
		if alwaysAllow || (pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0) {
			return deletePod(ctx, c, pod, opts, true, pdb.Name)
		}
	}
	refresh := false
	err = retry.RetryOnConflict(conflictRetry, func() error {
		if refresh {
			if err := c.Get(ctx, client.ObjectKeyFromObject(pdb), pdb); err != nil {
				return err
			}
		}
		refresh = true
		return checkAndDecrement(ctx, c, pdb, pod.Name, now())
	})
	if wait.Interrupted(err) {
		return apierrors.NewTimeoutError(fmt.Sprintf("couldn't update PodDisruptionBudget %q due to conflicts", pdb.Name), 10)
	}
	if err != nil {
		return err
	}
	return deletePod(ctx, c, pod, opts, false, "")
}

// budgetsOf lists the budgets of the pod's namespace that select it.
func budgetsOf(ctx context.Context, c client.Client, pod *corev1alpha1.Pod) ([]policyv1alpha1.PodDisruptionBudget, error) {
	var list policyv1alpha1.PodDisruptionBudgetList
	if err := c.List(ctx, &list, client.InNamespace(pod.Namespace)); err != nil {
		return nil, fmt.Errorf("listing the PodDisruptionBudgets of namespace %s: %w", pod.Namespace, err)
	}
	var out []policyv1alpha1.PodDisruptionBudget
	for _, pdb := range list.Items {
		if policy.Selects(&pdb, pod.Labels) {
			out = append(out, pdb)
		}
	}
	return out, nil
}

// checkAndDecrement spends one disruption of the budget, upstream's
// checkAndDecrement: the status write carries the resourceVersion read, so
// two evictions never spend the same disruption.
func checkAndDecrement(ctx context.Context, c client.Client, pdb *policyv1alpha1.PodDisruptionBudget, podName string, now time.Time) error {
	if pdb.Status.ObservedGeneration < pdb.Generation {
		return tooManyRequests(0, fmt.Sprintf("The disruption budget %s is still being processed by the server.", pdb.Name))
	}
	if pdb.Status.DisruptionsAllowed < 0 {
		return apierrors.NewForbidden(policyv1alpha1.GroupVersion.WithResource("poddisruptionbudgets").GroupResource(), pdb.Name,
			fmt.Errorf("pdb disruptions allowed is negative"))
	}
	if len(pdb.Status.DisruptedPods) > MaxDisruptedPodSize {
		return apierrors.NewForbidden(policyv1alpha1.GroupVersion.WithResource("poddisruptionbudgets").GroupResource(), pdb.Name,
			fmt.Errorf("DisruptedPods map too big - too many evictions not confirmed by PDB controller"))
	}
	if pdb.Status.DisruptionsAllowed == 0 {
		return tooManyRequests(0, fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently",
			pdb.Name, pdb.Status.DesiredHealthy, pdb.Status.CurrentHealthy))
	}
	pdb.Status.DisruptionsAllowed--
	if pdb.Status.DisruptionsAllowed == 0 {
		policy.SetDisruptionAllowed(pdb)
	}
	if pdb.Status.DisruptedPods == nil {
		pdb.Status.DisruptedPods = map[string]metav1.Time{}
	}
	pdb.Status.DisruptedPods[podName] = metav1.NewTime(now)
	// Update, not patch: the resourceVersion in pdb is the precondition.
	return c.Status().Update(ctx, pdb)
}

// deletePod marks the pod it was given (its UID) DisruptionTarget and
// deletes it with the eviction's options. With guardVersion the status
// patch carries the resourceVersion read and is not retried, so a pod that
// changed (turned ready) since it was judged is neither marked nor
// deleted: when a budget let the pod go unspent that conflict becomes a
// 429, as upstream, and the caller tries again; otherwise Evict reads the
// pod again. Without it a conflicting status write is merged again. The
// delete then carries the pod's UID and, with guardVersion, the
// resourceVersion the patch left.
func deletePod(ctx context.Context, c client.Client, pod *corev1alpha1.Pod, opts Options, guardVersion bool, pdbName string) error {
	uid := pod.UID
	mark := func(p *corev1alpha1.Pod) {
		if p.UID == uid {
			podutil.SetDisruptionTarget(p, podutil.ReasonEvictionByEvictionAPI, podutil.MessageEvictionByEvictionAPI)
		}
	}
	var err error
	if guardVersion {
		err = podstatus.PatchOnce(ctx, c.Status(), pod, mark)
	} else {
		err = podstatus.Patch(ctx, c, c.Status(), pod, mark)
	}
	if err == nil {
		pre := metav1.Preconditions{UID: &uid}
		if guardVersion {
			pre.ResourceVersion = &pod.ResourceVersion
		}
		del := []client.DeleteOption{client.Preconditions(pre)}
		if opts.GracePeriodSeconds != nil {
			del = append(del, client.GracePeriodSeconds(*opts.GracePeriodSeconds))
		}
		err = c.Delete(ctx, pod, del...)
	}
	if apierrors.IsConflict(err) && guardVersion && pdbName != "" {
		return tooManyRequests(10, fmt.Sprintf("The disruption budget %s is still being processed by the server.", pdbName))
	}
	return err
}

// tooManyRequests is the API server's refusal of an eviction that would
// violate a disruption budget, with the cause that says why.
func tooManyRequests(retryAfter int, cause string) error {
	err := apierrors.NewTooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", retryAfter)
	err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: policyv1.DisruptionBudgetCause, Message: cause})
	return err
}
