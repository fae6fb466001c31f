package volume

// Annotations and finalizers, with upstream's names so that tools that read
// them (kubectl describe, backup tools) understand skiff's objects.
const (
	// AnnBindCompleted on a claim says the controller finished binding it.
	AnnBindCompleted = "pv.kubernetes.io/bind-completed"
	// AnnBoundByController on a claim or volume says the controller, not the
	// user, chose the other side of the binding.
	AnnBoundByController = "pv.kubernetes.io/bound-by-controller"
	// AnnProvisionedBy on a volume names the provisioner that created it.
	AnnProvisionedBy = "pv.kubernetes.io/provisioned-by"
	// AnnStorageProvisioner on a claim names the provisioner asked to
	// create its volume.
	AnnStorageProvisioner = "volume.kubernetes.io/storage-provisioner"
	// AnnBetaStorageProvisioner is the older name of AnnStorageProvisioner,
	// still set by upstream for tools that read it.
	AnnBetaStorageProvisioner = "volume.beta.kubernetes.io/storage-provisioner"
	// AnnSelectedNode on a claim names the node its volume is provisioned
	// on: the node of the first pod scheduled with a WaitForFirstConsumer
	// claim, or the node the controller picked for an Immediate one.
	AnnSelectedNode = "volume.kubernetes.io/selected-node"
	// AnnDefaultStorageClass marks the StorageClass that claims without a
	// storageClassName get.
	AnnDefaultStorageClass = "storageclass.kubernetes.io/is-default-class"

	// FinalizerPVCProtection keeps a claim that a pod uses.
	FinalizerPVCProtection = "kubernetes.io/pvc-protection"
	// FinalizerPVProtection keeps a volume that is bound to a claim.
	FinalizerPVProtection = "kubernetes.io/pv-protection"

	// PodClaimIndex indexes Pods by "<namespace>/<claim name>" of each
	// persistentVolumeClaim volume.
	PodClaimIndex = "volume.skiff.dev/claims"
)

// ProvisionedVolumeName is the name of the volume provisioned for a claim,
// "pvc-<claim UID>", as upstream.
func ProvisionedVolumeName(claimUID string) string { return "pvc-" + claimUID }
