package podcontrol

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Claimer adopts and releases the children of one owner, as upstream's
// ControllerRefManager: a child that names the owner as its controller and
// still matches the selector is claimed; one that no longer matches is
// released; an orphan that matches is adopted, after CanAdopt confirms (with
// an uncached read) that the owner is not being deleted.
type Claimer struct {
	// Client patches the children.
	Client client.Client
	// Owner is the controller; OwnerGVK is its kind.
	Owner    client.Object
	OwnerGVK schema.GroupVersionKind
	// Selector selects the children the owner should have.
	Selector labels.Selector
	// CanAdopt is called once, before the first adoption or release.
	CanAdopt func(ctx context.Context) error

	checked  bool
	checkErr error
}

// Claim returns the objects the claimer's owner controls after adopting
// and releasing as needed. Objects controlled by others are skipped. It
// keeps going after an error and returns the claimed objects with the
// errors joined.
func Claim[T client.Object](ctx context.Context, m *Claimer, objs []T) ([]T, error) {
	var claimed []T
	var errs []error
	ownerDeleting := m.Owner.GetDeletionTimestamp() != nil
	for _, obj := range objs {
		ref := metav1.GetControllerOf(obj)
		matches := m.Selector.Matches(labels.Set(obj.GetLabels()))
		switch {
		case ref != nil && ref.UID != m.Owner.GetUID():
			continue
		case ref != nil && matches:
			claimed = append(claimed, obj)
		case ref != nil:
			if ownerDeleting {
				continue
			}
			if err := m.release(ctx, obj); err != nil {
				errs = append(errs, err)
				claimed = append(claimed, obj) // still ours until released
			}
		default:
			if ownerDeleting || !matches || obj.GetDeletionTimestamp() != nil || obj.GetNamespace() != m.Owner.GetNamespace() {
				continue
			}
			if err := m.adopt(ctx, obj); err != nil {
				if !apierrors.IsNotFound(err) {
					errs = append(errs, err)
				}
				continue
			}
			claimed = append(claimed, obj)
		}
	}
	if len(errs) > 0 {
		return claimed, fmt.Errorf("claiming children of %s: %w", klog.KObj(m.Owner), joinErrs(errs))
	}
	return claimed, nil
}

func (m *Claimer) canAdopt(ctx context.Context) error {
	if m.CanAdopt == nil {
		return nil
	}
	if !m.checked {
		m.checked = true
		m.checkErr = m.CanAdopt(ctx)
	}
	return m.checkErr
}

func (m *Claimer) adopt(ctx context.Context, obj client.Object) error {
	if err := m.canAdopt(ctx); err != nil {
		return fmt.Errorf("cannot adopt %s: %w", klog.KObj(obj), err)
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Adopting", "child", klog.KObj(obj))
	orig := obj.DeepCopyObject().(client.Object)
	obj.SetOwnerReferences(append(obj.GetOwnerReferences(), ControllerRef(m.Owner, m.OwnerGVK)))
	if err := m.Client.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adopting %s: %w", klog.KObj(obj), err)
	}
	return nil
}

func (m *Claimer) release(ctx context.Context, obj client.Object) error {
	ctrl.LoggerFrom(ctx).V(2).Info("Releasing", "child", klog.KObj(obj))
	orig := obj.DeepCopyObject().(client.Object)
	var refs []metav1.OwnerReference
	for _, r := range obj.GetOwnerReferences() {
		if r.UID != m.Owner.GetUID() {
			refs = append(refs, r)
		}
	}
	obj.SetOwnerReferences(refs)
	err := m.Client.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
	if apierrors.IsNotFound(err) || apierrors.IsInvalid(err) {
		// Gone, or being deleted in a way that forbids the change: nothing left to release.
		return nil
	}
	if err != nil {
		return fmt.Errorf("releasing %s: %w", klog.KObj(obj), err)
	}
	return nil
}

// RecheckDeletion returns a Claimer.CanAdopt function that reads the owner
// with an uncached reader and refuses adoption when the owner is gone,
// replaced (another UID) or being deleted, as upstream's
// RecheckDeletionTimestamp.
func RecheckDeletion(reader client.Reader, owner client.Object) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		fresh := owner.DeepCopyObject().(client.Object)
		if err := reader.Get(ctx, client.ObjectKeyFromObject(owner), fresh); err != nil {
			return err
		}
		if fresh.GetUID() != owner.GetUID() {
			return fmt.Errorf("original %s is gone: got uid %s, wanted %s", klog.KObj(owner), fresh.GetUID(), owner.GetUID())
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("%s has just been deleted at %v", klog.KObj(owner), fresh.GetDeletionTimestamp())
		}
		return nil
	}
}

// ControllerRef returns the controller reference a child of owner carries:
// controller and blockOwnerDeletion set, as upstream.
func ControllerRef(owner client.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion:         gvk.GroupVersion().String(),
		Kind:               gvk.Kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         &t,
		BlockOwnerDeletion: &t,
	}
}

// ControllerOfKind returns obj's controller reference when it names a
// controller of gk, and nil otherwise.
func ControllerOfKind(obj metav1.Object, gk schema.GroupKind) *metav1.OwnerReference {
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.Kind != gk.Kind {
		return nil
	}
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil || gv.Group != gk.Group {
		return nil
	}
	return ref
}
