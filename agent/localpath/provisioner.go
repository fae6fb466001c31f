package localpath

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/volume"
)

// Event reasons, as upstream's external provisioners word them.
const (
	ReasonProvisioningSucceeded = "ProvisioningSucceeded"
	ReasonProvisioningFailed    = "ProvisioningFailed"
	ReasonVolumeDeleted         = "VolumeDeleted"
	ReasonVolumeFailedDelete    = "VolumeFailedDelete"
)

// Provisioner creates and deletes the local-path volumes of one node.
type Provisioner struct {
	client   client.Client
	recorder events.EventRecorder
	node     string
	root     string
}

// New returns the provisioner of node, keeping volumes under root.
func New(c client.Client, recorder events.EventRecorder, node, root string) *Provisioner {
	return &Provisioner{client: c, recorder: recorder, node: node, root: root}
}

// Dir is the directory of a provisioned volume.
func (p *Provisioner) Dir(volumeName string) string { return filepath.Join(p.root, volumeName) }

// claimReconciler provisions; volumeReconciler deletes.
type claimReconciler struct{ *Provisioner }
type volumeReconciler struct{ *Provisioner }

var (
	_ reconcile.Reconciler = claimReconciler{}
	_ reconcile.Reconciler = volumeReconciler{}
)

// Reconcile provisions the claim's volume when it is this node's to make.
func (p claimReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	claim := &corev1alpha1.PersistentVolumeClaim{}
	if err := p.client.Get(ctx, req.NamespacedName, claim); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.ours(claim) {
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("claim", klog.KObj(claim))
	name := volume.ProvisionedVolumeName(string(claim.UID))
	existing := &corev1alpha1.PersistentVolume{}
	if err := p.client.Get(ctx, types.NamespacedName{Name: name}, existing); err == nil {
		return ctrl.Result{}, nil
	} else if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	class := &storagev1alpha1.StorageClass{}
	if err := p.client.Get(ctx, types.NamespacedName{Name: volume.ClaimClass(claim)}, class); err != nil {
		if apierrors.IsNotFound(err) {
			p.recorder.Eventf(claim, nil, corev1.EventTypeWarning, ReasonProvisioningFailed, "Provision",
				"storageclass.storage.skiff.dev %q not found", volume.ClaimClass(claim))
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	dir := p.Dir(name)
	log.V(2).Info("Creating local-path volume", "volume", name, "path", dir)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		p.recorder.Eventf(claim, nil, corev1.EventTypeWarning, ReasonProvisioningFailed, "Provision",
			"Failed to create the directory of volume %s on node %s: %v", name, p.node, err)
		return ctrl.Result{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	// Any user of the pod may write, as upstream's local-path provisioner.
	if err := os.Chmod(dir, 0o777); err != nil {
		return ctrl.Result{}, err
	}
	pv := desiredVolume(claim, class, name, dir, p.node)
	if err := p.client.Create(ctx, pv); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("creating volume %s for claim %s: %w", name, klog.KObj(claim), err)
	}
	p.recorder.Eventf(claim, nil, corev1.EventTypeNormal, ReasonProvisioningSucceeded, "Provision",
		"Successfully provisioned volume %s at %s on node %s", name, dir, p.node)
	return ctrl.Result{}, nil
}

// ours tells whether the claim waits for this node's provisioner.
func (p *Provisioner) ours(claim *corev1alpha1.PersistentVolumeClaim) bool {
	return claim.DeletionTimestamp == nil && claim.Spec.VolumeName == "" &&
		claim.Annotations[volume.AnnSelectedNode] == p.node &&
		claim.Annotations[volume.AnnStorageProvisioner] == storagev1alpha1.ProvisionerLocalPath
}

// desiredVolume is the PersistentVolume provisioned for a claim: the
// claim's request, access modes and class, the class's reclaim policy
// (Delete by default), a local source at dir, node affinity to the node,
// and a claimRef that pre-binds it to the claim.
func desiredVolume(claim *corev1alpha1.PersistentVolumeClaim, class *storagev1alpha1.StorageClass, name, dir, node string) *corev1alpha1.PersistentVolume {
	policy := corev1.PersistentVolumeReclaimDelete
	if class.ReclaimPolicy != nil {
		policy = *class.ReclaimPolicy
	}
	mode := corev1.PersistentVolumeFilesystem
	return &corev1alpha1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{volume.AnnProvisionedBy: storagev1alpha1.ProvisionerLocalPath},
		},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: claim.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   claim.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: policy,
			StorageClassName:              class.Name,
			VolumeMode:                    &mode,
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: corev1alpha1.GroupVersion.String(),
				Namespace: claim.Namespace, Name: claim.Name, UID: claim.UID,
			},
			PersistentVolumeSource: corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
			}}}},
		},
	}
}

// Reconcile deletes a Released local-path volume of this node whose
// reclaim policy is Delete: the directory first, then the object, so a
// failure leaves the volume to say why.
func (p volumeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pv := &corev1alpha1.PersistentVolume{}
	if err := p.client.Get(ctx, req.NamespacedName, pv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pv.Annotations[volume.AnnProvisionedBy] != storagev1alpha1.ProvisionerLocalPath || pv.Spec.Local == nil ||
		pv.Status.Phase != corev1.VolumeReleased || pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
		!p.onThisNode(pv) {
		return ctrl.Result{}, nil
	}
	log := ctrl.LoggerFrom(ctx).WithValues("volume", klog.KObj(pv))
	dir := filepath.Clean(pv.Spec.Local.Path)
	if rel, err := filepath.Rel(p.root, dir); err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.Contains(rel, "/") {
		p.recorder.Eventf(pv, nil, corev1.EventTypeWarning, ReasonVolumeFailedDelete, "Delete",
			"Not deleting %s: it is not a volume directory under %s on node %s", dir, p.root, p.node)
		return ctrl.Result{}, nil
	}
	log.V(2).Info("Deleting local-path volume", "path", dir)
	if err := os.RemoveAll(dir); err != nil {
		p.recorder.Eventf(pv, nil, corev1.EventTypeWarning, ReasonVolumeFailedDelete, "Delete", "Failed to remove %s on node %s: %v", dir, p.node, err)
		return ctrl.Result{}, fmt.Errorf("removing %s: %w", dir, err)
	}
	if err := p.client.Delete(ctx, pv, client.Preconditions{UID: &pv.UID}); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	p.recorder.Eventf(pv, nil, corev1.EventTypeNormal, ReasonVolumeDeleted, "Delete", "Deleted %s on node %s", dir, p.node)
	return ctrl.Result{}, nil
}

// onThisNode tells whether the volume's node affinity names this node.
func (p *Provisioner) onThisNode(pv *corev1alpha1.PersistentVolume) bool {
	n := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: p.node, Labels: map[string]string{corev1.LabelHostname: p.node}}}
	return pv.Spec.NodeAffinity != nil && volume.NodeMatches(pv, n)
}

// SetupWithManager registers the provisioner's two controllers.
func (p *Provisioner) SetupWithManager(mgr ctrl.Manager) error {
	mine := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetAnnotations()[volume.AnnSelectedNode] == p.node
	})
	if err := ctrl.NewControllerManagedBy(mgr).Named("local-path-provisioner").
		For(&corev1alpha1.PersistentVolumeClaim{}, builder.WithPredicates(mine)).
		Complete(claimReconciler{p}); err != nil {
		return err
	}
	local := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetAnnotations()[volume.AnnProvisionedBy] == storagev1alpha1.ProvisionerLocalPath
	})
	return ctrl.NewControllerManagedBy(mgr).Named("local-path-deleter").
		For(&corev1alpha1.PersistentVolume{}, builder.WithPredicates(local)).
		Complete(volumeReconciler{p})
}
