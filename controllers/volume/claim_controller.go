package volume

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
)

// labelSimulated marks the Nodes of simulated agents (agent.LabelSimulated),
// which run no provisioner: the controller does not pick them for an
// Immediate local-path claim.
const labelSimulated = "skiff.dev/simulated"

// noNodeRetry is how long an Immediate local-path claim waits for a Ready
// node to provision on.
const noNodeRetry = 10 * time.Second

// pendingResync is how often a Pending claim is looked at again without an
// event, upstream's resync period.
const pendingResync = 15 * time.Second

// ClaimReconciler binds PersistentVolumeClaims to PersistentVolumes, asks
// for provisioning when none matches, and protects claims in use.
type ClaimReconciler struct {
	client    client.Client
	apiReader client.Reader
	recorder  events.EventRecorder
}

var _ reconcile.Reconciler = (*ClaimReconciler)(nil)

// NewClaimReconciler returns the claim controller. apiReader confirms,
// uncached, that no pod uses a claim before its finalizer goes.
func NewClaimReconciler(c client.Client, apiReader client.Reader, recorder events.EventRecorder) *ClaimReconciler {
	return &ClaimReconciler{client: c, apiReader: apiReader, recorder: recorder}
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=persistentvolumeclaims;persistentvolumes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=persistentvolumeclaims/status;persistentvolumes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods;nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.skiff.dev,resources=storageclasses,verbs=get;list;watch

// Reconcile syncs one claim: protection, then binding, then status.
func (r *ClaimReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	claim := &corev1alpha1.PersistentVolumeClaim{}
	if err := r.client.Get(ctx, req.NamespacedName, claim); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	log := ctrl.LoggerFrom(ctx).WithValues("claim", klog.KObj(claim))
	ctx = ctrl.LoggerInto(ctx, log)

	if claim.DeletionTimestamp != nil {
		return ctrl.Result{}, r.releaseProtection(ctx, claim)
	}
	if !controllerutil.ContainsFinalizer(claim, FinalizerPVCProtection) {
		orig := claim.DeepCopy()
		controllerutil.AddFinalizer(claim, FinalizerPVCProtection)
		if err := r.client.Patch(ctx, claim, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding finalizer to claim %s: %w", klog.KObj(claim), err)
		}
	}

	before := claim.DeepCopy()
	var st claimState
	var err error
	if metav1.HasAnnotation(claim.ObjectMeta, AnnBindCompleted) {
		st, err = r.syncBound(ctx, claim)
	} else {
		st, res, err = r.syncUnbound(ctx, claim)
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	r.report(claim, before, st)
	applyClaimStatus(claim, st)
	if !equality.Semantic.DeepEqual(before.Status, claim.Status) {
		if err := r.client.Status().Patch(ctx, claim, client.MergeFrom(before)); err != nil {
			return ctrl.Result{}, fmt.Errorf("updating status of claim %s: %w", klog.KObj(claim), err)
		}
	}
	if st.phase == corev1.ClaimPending && res.RequeueAfter == 0 {
		// Events bring most changes; a resync, as upstream's, catches the rest.
		res.RequeueAfter = pendingResync
	}
	return res, nil
}

// report records an event when the claim's waiting reason changes, so that
// a claim that waits says why once, not at every sync.
func (r *ClaimReconciler) report(claim, before *corev1alpha1.PersistentVolumeClaim, st claimState) {
	if st.phase == corev1.ClaimBound || st.reason == "" {
		return
	}
	if c := meta.FindStatusCondition(before.Status.Conditions, conditions.Ready); c != nil && c.Reason == st.reason && c.Message == st.message {
		return
	}
	typ := corev1.EventTypeWarning
	if st.reason == corev1alpha1.ReasonWaitForFirstConsumer || st.reason == ReasonExternalProvisioning {
		typ = corev1.EventTypeNormal
	}
	// A typed nil would make the recorder dereference it.
	r.recorder.Eventf(claim, nil, typ, st.reason, "Bind", "%s", st.message)
}

// syncBound keeps a bound claim bound, finishes the volume side of a
// binding a restart interrupted, or marks the claim Lost.
func (r *ClaimReconciler) syncBound(ctx context.Context, claim *corev1alpha1.PersistentVolumeClaim) (claimState, error) {
	if claim.Spec.VolumeName == "" {
		return claimState{phase: corev1.ClaimLost, reason: ReasonClaimLost,
			message: "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!"}, nil
	}
	vol, err := r.getVolume(ctx, claim.Spec.VolumeName)
	if err != nil {
		return claimState{}, err
	}
	switch {
	case vol == nil:
		return claimState{phase: corev1.ClaimLost, reason: ReasonClaimLost,
			message: "Bound claim has lost its PersistentVolume. Data on the volume is lost!"}, nil
	case vol.Spec.ClaimRef == nil || (IsVolumeBoundToClaim(vol, claim) && vol.Spec.ClaimRef.UID == claim.UID):
		if err := r.bind(ctx, vol, claim); err != nil {
			return claimState{}, err
		}
		if err := r.expand(ctx, vol, claim); err != nil {
			return claimState{}, err
		}
		return claimState{phase: corev1.ClaimBound, volume: vol}, nil
	default:
		return claimState{phase: corev1.ClaimLost, reason: ReasonClaimMisbound,
			message: "Two claims are bound to the same volume, this one is bound incorrectly"}, nil
	}
}

// syncUnbound finds a volume for the claim and binds it, or says what the
// claim waits for.
func (r *ClaimReconciler) syncUnbound(ctx context.Context, claim *corev1alpha1.PersistentVolumeClaim) (claimState, ctrl.Result, error) {
	pending := func(reason, format string, args ...any) claimState {
		return claimState{phase: corev1.ClaimPending, reason: reason, message: fmt.Sprintf(format, args...)}
	}
	if claim.Spec.VolumeName != "" {
		// The user asked for a volume by name.
		vol, err := r.getVolume(ctx, claim.Spec.VolumeName)
		if err != nil {
			return claimState{}, ctrl.Result{}, err
		}
		switch {
		case vol == nil:
			return pending(ReasonFailedBinding, "volume %q not found", claim.Spec.VolumeName), ctrl.Result{}, nil
		case vol.Spec.ClaimRef == nil:
			if err := CheckVolumeSatisfiesClaim(vol, claim); err != nil {
				return pending(ReasonVolumeMismatch, "Cannot bind to requested volume %q: %v", vol.Name, err), ctrl.Result{}, nil
			}
		case !IsVolumeBoundToClaim(vol, claim):
			return pending(ReasonFailedBinding, "volume %q already bound to a different claim", vol.Name), ctrl.Result{}, nil
		}
		if err := r.bind(ctx, vol, claim); err != nil {
			return claimState{}, ctrl.Result{}, err
		}
		return claimState{phase: corev1.ClaimBound, volume: vol}, ctrl.Result{}, nil
	}

	if claim.Spec.StorageClassName == nil {
		// Retroactive default class assignment, as upstream: a claim that
		// names no class gets the default one, once there is one.
		def, err := r.defaultClass(ctx)
		if err != nil {
			return claimState{}, ctrl.Result{}, err
		}
		if def != "" {
			orig := claim.DeepCopy()
			claim.Spec.StorageClassName = &def
			if err := r.client.Patch(ctx, claim, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
				return claimState{}, ctrl.Result{}, fmt.Errorf("giving claim %s the default storage class %s: %w", klog.KObj(claim), def, err)
			}
		}
	}
	className := ClaimClass(claim)
	var class *storagev1alpha1.StorageClass
	if className != "" {
		class = &storagev1alpha1.StorageClass{}
		if err := r.client.Get(ctx, types.NamespacedName{Name: className}, class); err != nil {
			if !apierrors.IsNotFound(err) {
				return claimState{}, ctrl.Result{}, err
			}
			class = nil
		}
	}
	delay := class != nil && class.VolumeBindingMode != nil && *class.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer

	// A WaitForFirstConsumer claim is placed on the node of the first
	// scheduled pod that uses it.
	nodeName := claim.Annotations[AnnSelectedNode]
	if delay && nodeName == "" {
		consumer, err := r.scheduledConsumer(ctx, claim)
		if err != nil {
			return claimState{}, ctrl.Result{}, err
		}
		if consumer != nil {
			nodeName = consumer.Spec.NodeName
			if err := r.annotate(ctx, claim, map[string]string{AnnSelectedNode: nodeName}); err != nil {
				return claimState{}, ctrl.Result{}, err
			}
		}
	}
	var node *corev1alpha1.Node
	if delay && nodeName != "" {
		node = &corev1alpha1.Node{}
		if err := r.client.Get(ctx, types.NamespacedName{Name: nodeName}, node); err != nil {
			if !apierrors.IsNotFound(err) {
				return claimState{}, ctrl.Result{}, err
			}
			return pending(ReasonFailedBinding, "node %q selected for the claim does not exist", nodeName), ctrl.Result{}, nil
		}
	}

	vols := &corev1alpha1.PersistentVolumeList{}
	if err := r.client.List(ctx, vols); err != nil {
		return claimState{}, ctrl.Result{}, err
	}
	match, err := FindMatchingVolume(claim, vols.Items, node, delay)
	if err != nil {
		return pending(ReasonFailedBinding, "%v", err), ctrl.Result{}, reconcile.TerminalError(err)
	}
	if match != nil {
		if err := r.bind(ctx, match, claim); err != nil {
			return claimState{}, ctrl.Result{}, err
		}
		return claimState{phase: corev1.ClaimBound, volume: match}, ctrl.Result{}, nil
	}

	switch {
	case delay && node == nil:
		return pending(corev1alpha1.ReasonWaitForFirstConsumer, "waiting for first consumer to be created before binding"), ctrl.Result{}, nil
	case className != "" && class == nil:
		return pending(ReasonProvisioningFailed, "storageclass.storage.skiff.dev %q not found", className), ctrl.Result{}, nil
	case class == nil || class.Provisioner != storagev1alpha1.ProvisionerLocalPath:
		if class == nil {
			return pending(ReasonFailedBinding, "no persistent volumes available for this claim and no storage class is set"), ctrl.Result{}, nil
		}
		return pending(ReasonFailedBinding, "no persistent volumes available for this claim and storage class %q has no provisioner", className), ctrl.Result{}, nil
	case claim.Spec.Selector != nil:
		return pending(ReasonProvisioningFailed, "Failed to provision volume with StorageClass %q: claim Selector is not supported", className), ctrl.Result{}, nil
	}
	return r.provision(ctx, claim, class, nodeName)
}

// defaultClass is the StorageClass annotated as the default, the newest
// one when several are, as upstream; "" when there is none.
func (r *ClaimReconciler) defaultClass(ctx context.Context) (string, error) {
	classes := &storagev1alpha1.StorageClassList{}
	if err := r.client.List(ctx, classes); err != nil {
		return "", err
	}
	var best *storagev1alpha1.StorageClass
	for i := range classes.Items {
		c := &classes.Items[i]
		if c.Annotations[AnnDefaultStorageClass] != "true" || c.DeletionTimestamp != nil {
			continue
		}
		if best == nil || best.CreationTimestamp.Before(&c.CreationTimestamp) ||
			(best.CreationTimestamp.Equal(&c.CreationTimestamp) && c.Name < best.Name) {
			best = c
		}
	}
	if best == nil {
		return "", nil
	}
	return best.Name, nil
}

// provision hands the claim to the local-path provisioner of a node: the
// claim's selected node, or for an Immediate claim a Ready node that the
// class's allowedTopologies admit, chosen by the claim's UID so claims
// spread over nodes.
func (r *ClaimReconciler) provision(ctx context.Context, claim *corev1alpha1.PersistentVolumeClaim, class *storagev1alpha1.StorageClass, nodeName string) (claimState, ctrl.Result, error) {
	if nodeName == "" {
		nodes := &corev1alpha1.NodeList{}
		if err := r.client.List(ctx, nodes); err != nil {
			return claimState{}, ctrl.Result{}, err
		}
		nodeName = pickNode(nodes.Items, class, string(claim.UID))
		if nodeName == "" {
			return claimState{phase: corev1.ClaimPending, reason: ReasonProvisioningFailed,
				message: fmt.Sprintf("Failed to provision volume with StorageClass %q: no Ready node to provision on", class.Name)}, ctrl.Result{RequeueAfter: noNodeRetry}, nil
		}
	}
	want := map[string]string{AnnSelectedNode: nodeName, AnnStorageProvisioner: class.Provisioner, AnnBetaStorageProvisioner: class.Provisioner}
	if err := r.annotate(ctx, claim, want); err != nil {
		return claimState{}, ctrl.Result{}, err
	}
	return claimState{phase: corev1.ClaimPending, reason: ReasonExternalProvisioning,
		message: fmt.Sprintf("Waiting for a volume to be created by the %s provisioner on node %s", class.Provisioner, nodeName)}, ctrl.Result{}, nil
}

// pickNode chooses a Ready, schedulable, real node that the class's
// allowedTopologies admit.
func pickNode(nodes []corev1alpha1.Node, class *storagev1alpha1.StorageClass, key string) string {
	var names []string
	for i := range nodes {
		n := &nodes[i]
		if n.Spec.Unschedulable || n.Labels[labelSimulated] == "true" || n.DeletionTimestamp != nil ||
			!meta.IsStatusConditionTrue(n.Status.Conditions, conditions.Ready) || !TopologyAllows(class.AllowedTopologies, n) {
			continue
		}
		names = append(names, n.Name)
	}
	if len(names) == 0 {
		return ""
	}
	sort.Strings(names)
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return names[int(h.Sum32()%uint32(len(names)))]
}

// TopologyAllows tells whether a node is in a class's allowedTopologies:
// any term may match, and a term matches when the node's label has one of
// the values of each of its expressions. No terms admit every node.
func TopologyAllows(terms []corev1.TopologySelectorTerm, node *corev1alpha1.Node) bool {
	if len(terms) == 0 {
		return true
	}
	for _, t := range terms {
		ok := true
		for _, e := range t.MatchLabelExpressions {
			v, has := node.Labels[e.Key]
			found := false
			for _, want := range e.Values {
				if has && v == want {
					found = true
					break
				}
			}
			if !found {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// annotate adds annotations to the claim when they differ.
func (r *ClaimReconciler) annotate(ctx context.Context, claim *corev1alpha1.PersistentVolumeClaim, want map[string]string) error {
	orig := claim.DeepCopy()
	changed := false
	for k, v := range want {
		if claim.Annotations[k] != v {
			metav1.SetMetaDataAnnotation(&claim.ObjectMeta, k, v)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := r.client.Patch(ctx, claim, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("annotating claim %s: %w", klog.KObj(claim), err)
	}
	return nil
}

// bind binds volume and claim to each other in upstream's order, each step
// only when it is not done yet: the volume's claimRef (guarded by its
// resourceVersion, so two claims cannot take one volume), the volume's
// phase, the claim's volumeName and bind-completed annotation. The claim's
// status follows in Reconcile.
func (r *ClaimReconciler) bind(ctx context.Context, vol *corev1alpha1.PersistentVolume, claim *corev1alpha1.PersistentVolumeClaim) error {
	log := ctrl.LoggerFrom(ctx)
	ref := vol.Spec.ClaimRef
	if ref == nil || ref.UID != claim.UID || ref.Name != claim.Name || ref.Namespace != claim.Namespace {
		log.V(2).Info("Binding volume to claim", "volume", vol.Name)
		orig := vol.DeepCopy()
		if vol.Spec.ClaimRef == nil {
			metav1.SetMetaDataAnnotation(&vol.ObjectMeta, AnnBoundByController, "yes")
		}
		vol.Spec.ClaimRef = &corev1.ObjectReference{
			Kind: "PersistentVolumeClaim", APIVersion: corev1alpha1.GroupVersion.String(),
			Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID, ResourceVersion: claim.ResourceVersion,
		}
		if err := r.client.Patch(ctx, vol, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("binding volume %s to claim %s: %w", vol.Name, klog.KObj(claim), err)
		}
	}
	if vol.Status.Phase != corev1.VolumeBound {
		orig := vol.DeepCopy()
		applyVolumeStatus(vol, corev1.VolumeBound, "", "", metav1.Now())
		if err := r.client.Status().Patch(ctx, vol, client.MergeFrom(orig)); err != nil {
			return fmt.Errorf("updating status of volume %s: %w", vol.Name, err)
		}
	}
	if claim.Spec.VolumeName != vol.Name || !metav1.HasAnnotation(claim.ObjectMeta, AnnBindCompleted) {
		log.V(2).Info("Binding claim to volume", "volume", vol.Name)
		orig := claim.DeepCopy()
		if claim.Spec.VolumeName == "" {
			metav1.SetMetaDataAnnotation(&claim.ObjectMeta, AnnBoundByController, "yes")
		}
		metav1.SetMetaDataAnnotation(&claim.ObjectMeta, AnnBindCompleted, "yes")
		claim.Spec.VolumeName = vol.Name
		if err := r.client.Patch(ctx, claim, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
			return fmt.Errorf("binding claim %s to volume %s: %w", klog.KObj(claim), vol.Name, err)
		}
	}
	return nil
}

// expand grows a provisioned local-path volume when its claim asks for more
// and the class allows expansion. A directory has no size of its own, so
// growing it is recording the new capacity. Otherwise the claim says why
// it cannot grow.
func (r *ClaimReconciler) expand(ctx context.Context, vol *corev1alpha1.PersistentVolume, claim *corev1alpha1.PersistentVolumeClaim) error {
	req, have := requested(claim), capacity(vol)
	if req.Cmp(have) <= 0 {
		return nil
	}
	class := &storagev1alpha1.StorageClass{}
	allowed := false
	if name := ClaimClass(claim); name != "" {
		if err := r.client.Get(ctx, types.NamespacedName{Name: name}, class); err == nil {
			allowed = class.AllowVolumeExpansion != nil && *class.AllowVolumeExpansion
		}
	}
	if !allowed || vol.Annotations[AnnProvisionedBy] != storagev1alpha1.ProvisionerLocalPath {
		r.recorder.Eventf(claim, vol, corev1.EventTypeWarning, ReasonVolumeResizeFailed, "Resize",
			"Cannot grow the volume to %s: only claims of a StorageClass with allowVolumeExpansion whose volume skiff.dev/local-path provisioned can be resized", req.String())
		return nil
	}
	orig := vol.DeepCopy()
	vol.Spec.Capacity[corev1.ResourceStorage] = req
	if err := r.client.Patch(ctx, vol, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("resizing volume %s: %w", vol.Name, err)
	}
	r.recorder.Eventf(claim, vol, corev1.EventTypeNormal, ReasonVolumeResized, "Resize", "Volume %s resized to %s", vol.Name, req.String())
	return nil
}

// getVolume reads a volume from the cache and, when the cache does not
// have it, from the API server: a volume created a moment ago must not
// make a claim Lost.
func (r *ClaimReconciler) getVolume(ctx context.Context, name string) (*corev1alpha1.PersistentVolume, error) {
	vol := &corev1alpha1.PersistentVolume{}
	err := r.client.Get(ctx, types.NamespacedName{Name: name}, vol)
	if apierrors.IsNotFound(err) {
		err = r.apiReader.Get(ctx, types.NamespacedName{Name: name}, vol)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return vol, nil
}

// consumers lists the pods that use the claim, from the cache.
func (r *ClaimReconciler) consumers(ctx context.Context, claim *corev1alpha1.PersistentVolumeClaim) ([]corev1alpha1.Pod, error) {
	pods := &corev1alpha1.PodList{}
	if err := r.client.List(ctx, pods, client.InNamespace(claim.Namespace), client.MatchingFields{PodClaimIndex: claim.Namespace + "/" + claim.Name}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// scheduledConsumer is the earliest created pod that uses the claim and is
// scheduled, or nil.
func (r *ClaimReconciler) scheduledConsumer(ctx context.Context, claim *corev1alpha1.PersistentVolumeClaim) (*corev1alpha1.Pod, error) {
	pods, err := r.consumers(ctx, claim)
	if err != nil {
		return nil, err
	}
	var first *corev1alpha1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Spec.NodeName == "" || podTerminated(p) {
			continue
		}
		if first == nil || p.CreationTimestamp.Before(&first.CreationTimestamp) {
			first = p
		}
	}
	return first, nil
}

// podTerminated tells whether a pod has stopped using its volumes.
func podTerminated(p *corev1alpha1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// PodUsesClaim tells whether a pod holds the claim, as upstream's
// pvc-protection controller judges it: the pod is scheduled (the agent
// sees it and refuses a claim being deleted before that), has not
// terminated, and names the claim in a volume.
func PodUsesClaim(p *corev1alpha1.Pod, claimName string) bool {
	if p.Spec.NodeName == "" || podTerminated(p) {
		return false
	}
	for _, v := range p.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claimName {
			return true
		}
	}
	return false
}

// releaseProtection removes the pvc-protection finalizer of a claim being
// deleted once no pod uses it; the cache is trusted only when it says
// "in use", and confirmed by a live list when it says "unused".
func (r *ClaimReconciler) releaseProtection(ctx context.Context, claim *corev1alpha1.PersistentVolumeClaim) error {
	if !controllerutil.ContainsFinalizer(claim, FinalizerPVCProtection) {
		return nil
	}
	cached, err := r.consumers(ctx, claim)
	if err != nil {
		return err
	}
	for i := range cached {
		if PodUsesClaim(&cached[i], claim.Name) {
			ctrl.LoggerFrom(ctx).V(2).Info("Keeping claim in use", "pod", klog.KObj(&cached[i]))
			return nil
		}
	}
	live := &corev1alpha1.PodList{}
	if err := r.apiReader.List(ctx, live, client.InNamespace(claim.Namespace)); err != nil {
		return err
	}
	for i := range live.Items {
		if PodUsesClaim(&live.Items[i], claim.Name) {
			return errors.New("claim is in use by a pod the cache does not show yet")
		}
	}
	ctrl.LoggerFrom(ctx).V(2).Info("Removing pvc-protection finalizer")
	orig := claim.DeepCopy()
	controllerutil.RemoveFinalizer(claim, FinalizerPVCProtection)
	if err := r.client.Patch(ctx, claim, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return client.IgnoreNotFound(err)
	}
	return nil
}

// IndexPodClaims indexes pods by the claims their volumes name.
func IndexPodClaims(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &corev1alpha1.Pod{}, PodClaimIndex, func(o client.Object) []string {
		p := o.(*corev1alpha1.Pod)
		var keys []string
		for _, v := range p.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				keys = append(keys, p.Namespace+"/"+v.PersistentVolumeClaim.ClaimName)
			}
		}
		return keys
	})
}

// claimsOfClass lists the unbound claims of a class that appeared or
// changed, and the claims without a class, which a default class takes.
func (r *ClaimReconciler) claimsOfClass(ctx context.Context, o client.Object) []reconcile.Request {
	return r.unboundClaims(ctx, func(c *corev1alpha1.PersistentVolumeClaim) bool {
		return ClaimClass(c) == o.GetName() || c.Spec.StorageClassName == nil
	})
}

// unboundClaims lists the claims that wait for a volume and that match.
func (r *ClaimReconciler) unboundClaims(ctx context.Context, match func(*corev1alpha1.PersistentVolumeClaim) bool) []reconcile.Request {
	claims := &corev1alpha1.PersistentVolumeClaimList{}
	if err := r.client.List(ctx, claims); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range claims.Items {
		c := &claims.Items[i]
		if c.Spec.VolumeName == "" && c.DeletionTimestamp == nil && match(c) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(c)})
		}
	}
	return out
}

// SetupWithManager registers the controller: claims, the volumes that
// name them, and the pods that use them.
func (r *ClaimReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("persistentvolumeclaim").
		For(&corev1alpha1.PersistentVolumeClaim{}).
		Watches(&corev1alpha1.PersistentVolume{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			pv := o.(*corev1alpha1.PersistentVolume)
			if ref := pv.Spec.ClaimRef; ref != nil && ref.UID != "" {
				return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name}}}
			}
			// A volume that is or may become free: the waiting claims of its class.
			return r.unboundClaims(ctx, func(c *corev1alpha1.PersistentVolumeClaim) bool { return ClaimClass(c) == pv.Spec.StorageClassName })
		})).
		Watches(&corev1alpha1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			p := o.(*corev1alpha1.Pod)
			var out []reconcile.Request
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil {
					out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: p.Namespace, Name: v.PersistentVolumeClaim.ClaimName}})
				}
			}
			return out
		})).
		Watches(&storagev1alpha1.StorageClass{}, handler.EnqueueRequestsFromMapFunc(r.claimsOfClass)).
		Complete(r)
}
