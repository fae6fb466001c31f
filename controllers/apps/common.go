package apps

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
)

// summary is what a kind's status says about the object as a whole; it
// becomes the Ready, Reconciling and Stalled conditions.
type summary struct {
	// ready: the object has reached its desired state.
	ready bool
	// stalled: no progress without a change by the user.
	stalled bool
	// reason and message explain the state; reason defaults by state.
	reason, message string
}

// setSummary writes the Ready, Reconciling and Stalled conditions of s at
// generation gen, following kstatus: Reconciling and Stalled are removed
// rather than set False.
func setSummary(conds *[]metav1.Condition, gen int64, s summary) {
	switch {
	case s.ready:
		meta.SetStatusCondition(conds, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue,
			Reason: orDefault(s.reason, conditions.ReasonReconciled), Message: s.message, ObservedGeneration: gen})
		meta.RemoveStatusCondition(conds, conditions.Reconciling)
		meta.RemoveStatusCondition(conds, conditions.Stalled)
	case s.stalled:
		reason := orDefault(s.reason, conditions.ReasonInvalidSpec)
		meta.SetStatusCondition(conds, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionFalse,
			Reason: reason, Message: s.message, ObservedGeneration: gen})
		meta.SetStatusCondition(conds, metav1.Condition{Type: conditions.Stalled, Status: metav1.ConditionTrue,
			Reason: reason, Message: s.message, ObservedGeneration: gen})
		meta.RemoveStatusCondition(conds, conditions.Reconciling)
	default:
		reason := orDefault(s.reason, conditions.ReasonProgressing)
		meta.SetStatusCondition(conds, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionFalse,
			Reason: reason, Message: s.message, ObservedGeneration: gen})
		meta.SetStatusCondition(conds, metav1.Condition{Type: conditions.Reconciling, Status: metav1.ConditionTrue,
			Reason: reason, Message: s.message, ObservedGeneration: gen})
		meta.RemoveStatusCondition(conds, conditions.Stalled)
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// patchStatus patches obj's status from before to its current value when it changed.
func patchStatus(ctx context.Context, c client.Client, obj, before client.Object, statusOf func(client.Object) any) error {
	if equality.Semantic.DeepEqual(statusOf(before), statusOf(obj)) {
		return nil
	}
	if err := c.Status().Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("patching status of %s: %w", klog.KObj(obj), err)
	}
	return nil
}

// listOwned lists the objects of list's type in ns that either match
// selector or name ownerUID as their controller: every candidate for Claim.
// It returns the union, without duplicates, as pointers into list's items.
func listOwned[T client.Object](ctx context.Context, c client.Reader, list client.ObjectList, items func() []T, ns string, selector labels.Selector, ownerUID types.UID) ([]T, error) {
	seen := map[types.UID]bool{}
	var out []T
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, fmt.Errorf("listing %T: %w", list, err)
	}
	for _, o := range items() {
		seen[o.GetUID()] = true
		out = append(out, o)
	}
	if err := c.List(ctx, list, client.InNamespace(ns), client.MatchingFields{podcontrol.IndexControllerUID: string(ownerUID)}); err != nil {
		return nil, fmt.Errorf("listing %T: %w", list, err)
	}
	for _, o := range items() {
		if !seen[o.GetUID()] {
			out = append(out, o)
		}
	}
	return out, nil
}

// listPods returns the candidate pods of an owner (see listOwned).
func listPods(ctx context.Context, c client.Reader, ns string, selector labels.Selector, ownerUID types.UID) ([]*corev1alpha1.Pod, error) {
	var list corev1alpha1.PodList
	return listOwned(ctx, c, &list, func() []*corev1alpha1.Pod {
		out := make([]*corev1alpha1.Pod, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out
	}, ns, selector, ownerUID)
}

// podsControlledBy lists the pods whose controller is uid.
func podsControlledBy(ctx context.Context, c client.Reader, ns string, uid types.UID) ([]*corev1alpha1.Pod, error) {
	var list corev1alpha1.PodList
	if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{podcontrol.IndexControllerUID: string(uid)}); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	out := make([]*corev1alpha1.Pod, len(list.Items))
	for i := range list.Items {
		out[i] = &list.Items[i]
	}
	return out, nil
}

// readyString is the READY column: "ready/desired".
func readyString(ready, desired int32) string {
	return fmt.Sprintf("%d/%d", ready, desired)
}

func derefInt32(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func int32Ptr(v int32) *int32 { return &v }

// plural returns word with an s unless n is 1.
func plural(n int32, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, strings.TrimSuffix(word, "s"))
}

type (
	handlerDeleteEvent = event.DeleteEvent
	handlerQueue       = workqueue.TypedRateLimitingInterface[reconcile.Request]
)

func parseRevision(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && n < 0 {
		err = fmt.Errorf("revision %d is negative", n)
	}
	return n, err
}

func sortStableBy[T any](s []T, less func(a, b T) bool) {
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
}

// selectingOwners lists the objects of list in obj's namespace and names
// those whose non-empty selector matches obj's labels: the owners that may
// adopt an orphan, as upstream's getPodReplicaSets and its kin.
func selectingOwners[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, c client.Reader, obj client.Object, list client.ObjectList,
	items func() []T, selector func(PT) *metav1.LabelSelector) []types.NamespacedName {
	if err := c.List(ctx, list, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var out []types.NamespacedName
	objs := items()
	for i := range objs {
		owner := PT(&objs[i])
		sel, err := metav1.LabelSelectorAsSelector(selector(owner))
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(obj.GetLabels())) {
			continue
		}
		out = append(out, client.ObjectKeyFromObject(owner))
	}
	return out
}
