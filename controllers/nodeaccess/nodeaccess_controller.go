package nodeaccess

import (
	"context"
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
	"github.com/skiff-dev/skiff/internal/nodeid"
)

const (
	// LabelManaged marks the Roles and RoleBindings this controller owns.
	LabelManaged = "skiff.dev/node-access"
	// NamePrefix starts the name of a node's Role and RoleBinding; the
	// node's name follows it.
	NamePrefix = "skiff-node:"

	// roleNodeIndex indexes managed Roles and RoleBindings by their node.
	roleNodeIndex = "nodeaccess.node"
)

// ObjectName is the name of a node's Role and RoleBinding in each namespace.
func ObjectName(node string) string { return NamePrefix + node }

// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// Granting reads of Secrets and ConfigMaps needs them (RBAC escalation check):
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get

// Reconciler keeps one node's Roles and RoleBindings: the request's name is
// the node's name (a Node object need not exist: what counts are the pods
// bound to that name).
type Reconciler struct {
	client client.Client
}

var _ reconcile.Reconciler = (*Reconciler)(nil)

// NewReconciler returns a Reconciler writing through c (the manager's client).
func NewReconciler(c client.Client) *Reconciler { return &Reconciler{client: c} }

// Reconcile makes the node's Roles say exactly what its pods reference.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	node := req.Name
	log := ctrl.LoggerFrom(ctx).WithValues("node", klog.KRef("", node))
	ctx = ctrl.LoggerInto(ctx, log)

	pods := &corev1alpha1.PodList{}
	if err := r.client.List(ctx, pods, client.MatchingFields{podcontrol.IndexPodNodeName: node}); err != nil {
		return ctrl.Result{}, err
	}
	want := DesiredReferences(pods.Items)

	roles := &rbacv1.RoleList{}
	if err := r.client.List(ctx, roles, client.MatchingFields{roleNodeIndex: node}); err != nil {
		return ctrl.Result{}, err
	}
	bindings := &rbacv1.RoleBindingList{}
	if err := r.client.List(ctx, bindings, client.MatchingFields{roleNodeIndex: node}); err != nil {
		return ctrl.Result{}, err
	}
	// 1. Remove what no pod of the node needs any more.
	for i := range bindings.Items {
		if _, ok := want[bindings.Items[i].Namespace]; !ok {
			if err := r.delete(ctx, &bindings.Items[i]); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	for i := range roles.Items {
		if _, ok := want[roles.Items[i].Namespace]; !ok {
			if err := r.delete(ctx, &roles.Items[i]); err != nil {
				return ctrl.Result{}, err
			}
		}
	}
	// 2. Create or update the rest: the Role first, so that a binding
	// never names a Role that does not exist yet.
	have := map[string]*rbacv1.Role{}
	for i := range roles.Items {
		have[roles.Items[i].Namespace] = &roles.Items[i]
	}
	haveB := map[string]*rbacv1.RoleBinding{}
	for i := range bindings.Items {
		haveB[bindings.Items[i].Namespace] = &bindings.Items[i]
	}
	for ns, refs := range want {
		if err := r.ensureRole(ctx, have[ns], DesiredRole(node, ns, refs)); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.ensureBinding(ctx, haveB[ns], DesiredRoleBinding(node, ns)); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

func (r *Reconciler) delete(ctx context.Context, obj client.Object) error {
	ctrl.LoggerFrom(ctx).V(2).Info("Removing node access", "kind", fmt.Sprintf("%T", obj), "object", klog.KObj(obj))
	if err := r.client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", klog.KObj(obj), err)
	}
	return nil
}

func (r *Reconciler) ensureRole(ctx context.Context, cur, want *rbacv1.Role) error {
	if cur == nil {
		ctrl.LoggerFrom(ctx).V(2).Info("Granting node access", "role", klog.KObj(want))
		if err := r.client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating role %s: %w", klog.KObj(want), err)
		}
		return nil
	}
	if equality.Semantic.DeepEqual(cur.Rules, want.Rules) && equality.Semantic.DeepEqual(cur.Labels, want.Labels) {
		return nil
	}
	updated := cur.DeepCopy()
	updated.Rules, updated.Labels = want.Rules, want.Labels
	ctrl.LoggerFrom(ctx).V(2).Info("Updating node access", "role", klog.KObj(want))
	if err := r.client.Update(ctx, updated); err != nil {
		return fmt.Errorf("updating role %s: %w", klog.KObj(want), err)
	}
	return nil
}

func (r *Reconciler) ensureBinding(ctx context.Context, cur, want *rbacv1.RoleBinding) error {
	if cur == nil {
		if err := r.client.Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating rolebinding %s: %w", klog.KObj(want), err)
		}
		return nil
	}
	if equality.Semantic.DeepEqual(cur.Subjects, want.Subjects) && cur.RoleRef == want.RoleRef {
		return nil
	}
	// The role reference is immutable: replace the binding.
	if err := r.delete(ctx, cur); err != nil {
		return err
	}
	if err := r.client.Create(ctx, want); err != nil {
		return fmt.Errorf("creating rolebinding %s: %w", klog.KObj(want), err)
	}
	return nil
}

// DesiredReferences are the Secrets and ConfigMaps, per namespace, that a
// node's pods use; namespaces whose pods use none are absent.
func DesiredReferences(pods []corev1alpha1.Pod) map[string]References {
	out := map[string]References{}
	for i := range pods {
		refs := PodReferences(&pods[i].Spec)
		if refs.Empty() {
			continue
		}
		out[pods[i].Namespace] = out[pods[i].Namespace].merge(refs)
	}
	return out
}

// DesiredRole is the Role that lets node GET the referenced objects of namespace.
func DesiredRole(node, namespace string, refs References) *rbacv1.Role {
	role := &rbacv1.Role{ObjectMeta: objectMeta(node, namespace)}
	if len(refs.Secrets) > 0 {
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: refs.Secrets})
	}
	if len(refs.ConfigMaps) > 0 {
		role.Rules = append(role.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}, ResourceNames: refs.ConfigMaps})
	}
	return role
}

// DesiredRoleBinding binds node's Role in namespace to the node's user.
func DesiredRoleBinding(node, namespace string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: objectMeta(node, namespace),
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: ObjectName(node)},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: nodeid.UserName(node)}},
	}
}

func objectMeta(node, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: ObjectName(node), Labels: map[string]string{LabelManaged: "true"}}
}

// nodeOf is the node of a managed Role or RoleBinding.
func nodeOf(o client.Object) string {
	if o.GetLabels()[LabelManaged] != "true" {
		return ""
	}
	node, _ := strings.CutPrefix(o.GetName(), NamePrefix)
	return node
}

// SetupWithManager registers the indexes and the watches: pods map to the
// node they are (or were) bound to, managed Roles and RoleBindings to their node.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := podcontrol.IndexPodsByNode(ctx, idx); err != nil {
		return err
	}
	byNode := func(o client.Object) []string {
		if n := nodeOf(o); n != "" {
			return []string{n}
		}
		return nil
	}
	if err := idx.IndexField(ctx, &rbacv1.Role{}, roleNodeIndex, byNode); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &rbacv1.RoleBinding{}, roleNodeIndex, byNode); err != nil {
		return err
	}
	toNode := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		var n string
		if pod, ok := o.(*corev1alpha1.Pod); ok {
			n = pod.Spec.NodeName
		} else {
			n = nodeOf(o)
		}
		if n == "" {
			return nil
		}
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: n}}}
	})
	managed := predicate.NewPredicateFuncs(func(o client.Object) bool { return nodeOf(o) != "" })
	return ctrl.NewControllerManagedBy(mgr).
		Named("nodeaccess").
		// The map function runs for the old and the new pod of an update,
		// so a pod that moves (or is unbound) reconciles both nodes.
		Watches(&corev1alpha1.Pod{}, toNode, builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(e event.UpdateEvent) bool {
				o, n := e.ObjectOld.(*corev1alpha1.Pod), e.ObjectNew.(*corev1alpha1.Pod)
				if o.Generation == n.Generation {
					return false // no spec change: a status write, most of the updates
				}
				return o.Spec.NodeName != n.Spec.NodeName ||
					!equality.Semantic.DeepEqual(PodReferences(&o.Spec), PodReferences(&n.Spec))
			},
		})).
		Watches(&rbacv1.Role{}, toNode, builder.WithPredicates(managed)).
		Watches(&rbacv1.RoleBinding{}, toNode, builder.WithPredicates(managed)).
		Complete(r)
}
