package podcontrol

import (
	"context"
	"reflect"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// OrphanOwnersFunc returns the owners that might adopt an object with no
// controller (those whose selector matches its labels).
type OrphanOwnersFunc func(ctx context.Context, obj client.Object) []types.NamespacedName

// ChildEventHandler returns the event handler a controller of kind owner
// puts on the children it creates (pods, or ReplicaSets for a Deployment).
// It enqueues the controller of each changed child, lowers exp as the cache
// observes creations and deletions (a child whose deletionTimestamp appears
// counts as deleted, as upstream), and for orphans enqueues the owners that
// orphanOwners names, so they may adopt them. exp and orphanOwners may be nil.
func ChildEventHandler(owner schema.GroupKind, exp *Expectations, orphanOwners OrphanOwnersFunc) handler.EventHandler {
	h := &childHandler{gk: owner, exp: exp, orphans: orphanOwners}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.create(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.update(ctx, e.ObjectOld, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			h.delete(e.Object, q)
		},
	}
}

type childHandler struct {
	gk      schema.GroupKind
	exp     *Expectations
	orphans OrphanOwnersFunc
}

func (h *childHandler) owner(obj client.Object) (types.NamespacedName, bool) {
	ref := ControllerOfKind(obj, h.gk)
	if ref == nil {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: obj.GetNamespace(), Name: ref.Name}, true
}

func (h *childHandler) create(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if obj.GetDeletionTimestamp() != nil {
		// Seen for the first time already terminating (a relist): it is a deletion.
		h.delete(obj, q)
		return
	}
	if key, ok := h.owner(obj); ok {
		if h.exp != nil {
			h.exp.CreationObserved(key.String())
		}
		q.Add(reconcile.Request{NamespacedName: key})
		return
	}
	if metav1Controller(obj) {
		return // controlled by another kind
	}
	h.enqueueOrphanOwners(ctx, obj, q)
}

func (h *childHandler) update(ctx context.Context, old, cur client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if old.GetResourceVersion() == cur.GetResourceVersion() {
		return // a resync
	}
	oldKey, oldOK := h.owner(old)
	curKey, curOK := h.owner(cur)
	if cur.GetDeletionTimestamp() != nil && old.GetDeletionTimestamp() == nil && curOK && h.exp != nil {
		h.exp.DeletionObserved(curKey.String(), cur.GetUID())
	}
	if oldOK && (!curOK || oldKey != curKey) {
		q.Add(reconcile.Request{NamespacedName: oldKey})
	}
	if curOK {
		q.Add(reconcile.Request{NamespacedName: curKey})
		return
	}
	if metav1Controller(cur) {
		return
	}
	if oldOK || !reflect.DeepEqual(old.GetLabels(), cur.GetLabels()) {
		h.enqueueOrphanOwners(ctx, cur, q)
	}
}

func (h *childHandler) delete(obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	key, ok := h.owner(obj)
	if !ok {
		return
	}
	if h.exp != nil {
		h.exp.DeletionObserved(key.String(), obj.GetUID())
	}
	q.Add(reconcile.Request{NamespacedName: key})
}

func (h *childHandler) enqueueOrphanOwners(ctx context.Context, obj client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	if h.orphans == nil || obj.GetDeletionTimestamp() != nil {
		return
	}
	for _, key := range h.orphans(ctx, obj) {
		q.Add(reconcile.Request{NamespacedName: key})
	}
}

func metav1Controller(obj client.Object) bool {
	for _, r := range obj.GetOwnerReferences() {
		if r.Controller != nil && *r.Controller {
			return true
		}
	}
	return false
}
