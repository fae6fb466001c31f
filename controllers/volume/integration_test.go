package volume_test

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/volume"
)

const (
	timeout = 20 * time.Second
	poll    = 100 * time.Millisecond
)

func hostPathPV(name, size string) *corev1alpha1.PersistentVolume {
	return &corev1alpha1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + name}},
		},
	}
}

func newClaim(ns, name, size, class string) *corev1alpha1.PersistentVolumeClaim {
	c := &corev1alpha1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	if class != "" {
		c.Spec.StorageClassName = &class
	}
	return c
}

func newClass(name string, mode storagev1.VolumeBindingMode, policy corev1.PersistentVolumeReclaimPolicy) *storagev1alpha1.StorageClass {
	return &storagev1alpha1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: name},
		Provisioner:       storagev1alpha1.ProvisionerLocalPath,
		VolumeBindingMode: &mode,
		ReclaimPolicy:     &policy,
		// Only the suite's provisioner node, though other Ready nodes exist.
		AllowedTopologies: []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{
			{Key: corev1.LabelHostname, Values: []string{provisionerNode}}}}},
	}
}

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "vol-" + rand.String(5)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func podUsing(ns, name, claim, node string) *corev1alpha1.Pod {
	p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	p.Spec.NodeName = node
	p.Spec.Containers = []corev1.Container{{Name: "main", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}
	p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}
	return p
}

func create(obj client.Object) {
	// The API server may still be loading a CRD's schema for an admission policy (503).
	Eventually(func() error { return k8sClient.Create(ctx, obj) }, timeout, poll).Should(Succeed())
}

func getClaim(ns, name string) func(g Gomega) *corev1alpha1.PersistentVolumeClaim {
	return func(g Gomega) *corev1alpha1.PersistentVolumeClaim {
		c := &corev1alpha1.PersistentVolumeClaim{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, c)).To(Succeed())
		return c
	}
}

func getPV(name string) func(g Gomega) *corev1alpha1.PersistentVolume {
	return func(g Gomega) *corev1alpha1.PersistentVolume {
		v := &corev1alpha1.PersistentVolume{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, v)).To(Succeed())
		return v
	}
}

// expectBound waits until claim and volume are bound to each other.
func expectBound(ns, claim, pv string) {
	Eventually(func(g Gomega) {
		c := getClaim(ns, claim)(g)
		g.Expect(c.Spec.VolumeName).To(Equal(pv))
		g.Expect(c.Status.Phase).To(Equal(corev1.ClaimBound))
		g.Expect(c.Annotations).To(HaveKeyWithValue(volume.AnnBindCompleted, "yes"))
		g.Expect(meta.IsStatusConditionTrue(c.Status.Conditions, conditions.Ready)).To(BeTrue())
		v := getPV(pv)(g)
		g.Expect(v.Spec.ClaimRef).NotTo(BeNil())
		g.Expect(v.Spec.ClaimRef.UID).To(Equal(c.UID))
		g.Expect(v.Status.Phase).To(Equal(corev1.VolumeBound))
		g.Expect(c.Status.Capacity).To(HaveKeyWithValue(corev1.ResourceStorage, v.Spec.Capacity[corev1.ResourceStorage]))
	}, timeout, poll).Should(Succeed())
}

func readyNode(name string) {
	n := &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
	err := k8sClient.Create(ctx, n)
	if apierrors.IsAlreadyExists(err) {
		return
	}
	Expect(err).NotTo(HaveOccurred())
	meta.SetStatusCondition(&n.Status.Conditions, metav1.Condition{Type: conditions.Ready, Status: metav1.ConditionTrue, Reason: "AgentReady", Message: "test"})
	Expect(k8sClient.Status().Update(ctx, n)).To(Succeed())
}

var _ = Describe("binding", func() {
	It("binds a claim to the smallest volume that satisfies it, on both sides", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		for _, pv := range []*corev1alpha1.PersistentVolume{hostPathPV("b1-"+suffix, "1Gi"), hostPathPV("b5-"+suffix, "5Gi"), hostPathPV("b10-"+suffix, "10Gi")} {
			pv.Labels = map[string]string{"suite": suffix}
			create(pv)
		}
		// As upstream, only Available volumes are candidates: wait until
		// all three are, or the claim may take the first one that is.
		Eventually(func(g Gomega) {
			for _, name := range []string{"b1-", "b5-", "b10-"} {
				g.Expect(getPV(name + suffix)(g).Status.Phase).To(Equal(corev1.VolumeAvailable))
			}
		}, timeout, poll).Should(Succeed())
		claim := newClaim(ns, "data", "3Gi", "")
		claim.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"suite": suffix}}
		create(claim)
		expectBound(ns, "data", "b5-"+suffix)
		Eventually(func(g Gomega) {
			g.Expect(getPV("b1-" + suffix)(g).Status.Phase).To(Equal(corev1.VolumeAvailable))
			g.Expect(getClaim(ns, "data")(g).Finalizers).To(ContainElement(volume.FinalizerPVCProtection))
			g.Expect(getPV("b5-" + suffix)(g).Finalizers).To(ContainElement(volume.FinalizerPVProtection))
		}, timeout, poll).Should(Succeed())
	})

	It("keeps a claim Pending while nothing matches, and binds it when a volume appears", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		claim := newClaim(ns, "later", "2Gi", "")
		claim.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"suite": suffix}}
		create(claim)
		Eventually(func(g Gomega) {
			c := getClaim(ns, "later")(g)
			g.Expect(c.Status.Phase).To(Equal(corev1.ClaimPending))
			cond := meta.FindStatusCondition(c.Status.Conditions, conditions.Ready)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Reason).To(Equal(volume.ReasonFailedBinding))
		}, timeout, poll).Should(Succeed())
		pv := hostPathPV("later-"+suffix, "2Gi")
		pv.Labels = map[string]string{"suite": suffix}
		create(pv)
		expectBound(ns, "later", "later-"+suffix)
	})

	It("honours a volume's claimRef pre-binding over a smaller free volume", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		create(hostPathPV("free-"+suffix, "1Gi"))
		pre := hostPathPV("pre-"+suffix, "8Gi")
		pre.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: "mine"}
		create(pre)
		create(newClaim(ns, "mine", "1Gi", ""))
		expectBound(ns, "mine", "pre-"+suffix)
		Expect(getPV("free-" + suffix)(Default).Spec.ClaimRef).To(BeNil())
	})

	It("binds a claim to the volume its volumeName names, and refuses one too small", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		create(hostPathPV("named-"+suffix, "4Gi"))
		create(hostPathPV("tiny-"+suffix, "1Gi"))
		c := newClaim(ns, "named", "2Gi", "")
		c.Spec.VolumeName = "named-" + suffix
		create(c)
		expectBound(ns, "named", "named-"+suffix)
		small := newClaim(ns, "small", "2Gi", "")
		small.Spec.VolumeName = "tiny-" + suffix
		create(small)
		Eventually(func(g Gomega) {
			cond := meta.FindStatusCondition(getClaim(ns, "small")(g).Status.Conditions, conditions.Ready)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Reason).To(Equal(volume.ReasonVolumeMismatch))
			g.Expect(cond.Message).To(ContainSubstring("too small"))
		}, timeout, poll).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(getPV("tiny-" + suffix)(g).Spec.ClaimRef).To(BeNil())
		}, 2*time.Second, poll).Should(Succeed())
	})

	It("finishes a binding whose claim side was written but whose volume side was not (a restart half-way)", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		create(hostPathPV("half-"+suffix, "1Gi"))
		c := newClaim(ns, "half", "1Gi", "")
		c.Spec.VolumeName = "half-" + suffix
		c.Annotations = map[string]string{volume.AnnBindCompleted: "yes", volume.AnnBoundByController: "yes"}
		create(c)
		expectBound(ns, "half", "half-"+suffix)
	})

	It("finishes a binding whose volume side was written but whose claim side was not (a restart half-way)", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		c := newClaim(ns, "other-half", "1Gi", "none-"+suffix)
		create(c)
		pv := hostPathPV("other-half-"+suffix, "3Gi")
		pv.Spec.StorageClassName = "none-" + suffix
		pv.Annotations = map[string]string{volume.AnnBoundByController: "yes"}
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: "other-half", UID: c.UID}
		create(pv)
		expectBound(ns, "other-half", "other-half-"+suffix)
	})
})

var _ = Describe("protection and reclaim", func() {
	It("keeps a claim a pod uses and a volume bound to a claim until nothing uses them; Retain leaves the volume Released", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		pv := hostPathPV("prot-"+suffix, "1Gi")
		pv.Spec.StorageClassName = "prot-" + suffix
		create(pv)
		create(newClaim(ns, "prot", "1Gi", "prot-"+suffix))
		expectBound(ns, "prot", "prot-"+suffix)
		create(podUsing(ns, "user", "prot", "n-elsewhere"))

		By("deleting the bound volume: it stays while bound")
		Expect(k8sClient.Delete(ctx, getPV("prot-"+suffix)(Default))).To(Succeed())
		By("deleting the claim: it stays while the pod uses it")
		Expect(k8sClient.Delete(ctx, getClaim(ns, "prot")(Default))).To(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(getClaim(ns, "prot")(g).DeletionTimestamp).NotTo(BeNil())
			g.Expect(getPV("prot-" + suffix)(g).DeletionTimestamp).NotTo(BeNil())
		}, 2*time.Second, poll).Should(Succeed())

		By("deleting the pod: the claim goes, then the released volume")
		Expect(k8sClient.Delete(ctx, &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "user"}})).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "prot"}, &corev1alpha1.PersistentVolumeClaim{}))
		}, timeout, poll).Should(BeTrue())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: "prot-" + suffix}, &corev1alpha1.PersistentVolume{}))
		}, timeout, poll).Should(BeTrue())
	})

	It("releases a Retain volume when its claim goes, and makes it Available again when its claimRef is cleared", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		pv := hostPathPV("keep-"+suffix, "1Gi")
		pv.Spec.StorageClassName = "keep-" + suffix
		create(pv)
		create(newClaim(ns, "keep", "1Gi", "keep-"+suffix))
		expectBound(ns, "keep", "keep-"+suffix)
		Expect(k8sClient.Delete(ctx, getClaim(ns, "keep")(Default))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(getPV("keep-" + suffix)(g).Status.Phase).To(Equal(corev1.VolumeReleased))
		}, timeout, poll).Should(Succeed())
		v := getPV("keep-" + suffix)(Default)
		v.Spec.ClaimRef = nil
		Expect(k8sClient.Update(ctx, v)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(getPV("keep-" + suffix)(g).Status.Phase).To(Equal(corev1.VolumeAvailable))
		}, timeout, poll).Should(Succeed())
	})

	It("fails a static volume with reclaim policy Delete, which skiff cannot delete", func() {
		ns := newNamespace()
		suffix := rand.String(4)
		pv := hostPathPV("del-"+suffix, "1Gi")
		pv.Spec.StorageClassName = "del-" + suffix
		pv.Spec.PersistentVolumeReclaimPolicy = corev1.PersistentVolumeReclaimDelete
		create(pv)
		create(newClaim(ns, "del", "1Gi", "del-"+suffix))
		expectBound(ns, "del", "del-"+suffix)
		Expect(k8sClient.Delete(ctx, getClaim(ns, "del")(Default))).To(Succeed())
		Eventually(func(g Gomega) {
			v := getPV("del-" + suffix)(g)
			g.Expect(v.Status.Phase).To(Equal(corev1.VolumeFailed))
			g.Expect(v.Status.Reason).To(Equal(volume.ReasonVolumeFailedDelete))
		}, timeout, poll).Should(Succeed())
	})
})

var _ = Describe("local-path provisioning", func() {
	BeforeEach(func() { readyNode(provisionerNode) })

	provisioned := func(ns, claim string) (string, string) {
		var pvName, dir string
		Eventually(func(g Gomega) {
			c := getClaim(ns, claim)(g)
			g.Expect(c.Annotations).To(HaveKeyWithValue(volume.AnnSelectedNode, provisionerNode))
			g.Expect(c.Status.Phase).To(Equal(corev1.ClaimBound))
			pvName = volume.ProvisionedVolumeName(string(c.UID))
			v := getPV(pvName)(g)
			g.Expect(v.Spec.Local).NotTo(BeNil())
			dir = v.Spec.Local.Path
			g.Expect(v.Annotations).To(HaveKeyWithValue(volume.AnnProvisionedBy, storagev1alpha1.ProvisionerLocalPath))
			g.Expect(v.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values).To(Equal([]string{provisionerNode}))
		}, timeout, poll).Should(Succeed())
		expectBound(ns, claim, pvName)
		Expect(dir).To(Equal(provisioner.Dir(pvName)))
		Expect(dir).To(BeADirectory())
		return pvName, dir
	}

	It("provisions an Immediate claim on a Ready node and deletes the directory and volume with the claim (reclaim Delete)", func() {
		ns := newNamespace()
		class := "imm-" + rand.String(4)
		create(newClass(class, storagev1.VolumeBindingImmediate, corev1.PersistentVolumeReclaimDelete))
		create(newClaim(ns, "data", "1Gi", class))
		pvName, dir := provisioned(ns, "data")
		Expect(os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644)).To(Succeed())

		Expect(k8sClient.Delete(ctx, getClaim(ns, "data")(Default))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: pvName}, &corev1alpha1.PersistentVolume{}))
		}, timeout, poll).Should(BeTrue())
		Expect(dir).NotTo(BeAnExistingFile())
	})

	It("keeps the directory and leaves the volume Released with reclaim Retain", func() {
		ns := newNamespace()
		class := "ret-" + rand.String(4)
		create(newClass(class, storagev1.VolumeBindingImmediate, corev1.PersistentVolumeReclaimRetain))
		create(newClaim(ns, "data", "1Gi", class))
		pvName, dir := provisioned(ns, "data")
		Expect(os.WriteFile(filepath.Join(dir, "file"), []byte("kept"), 0o644)).To(Succeed())
		Expect(k8sClient.Delete(ctx, getClaim(ns, "data")(Default))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(getPV(pvName)(g).Status.Phase).To(Equal(corev1.VolumeReleased))
		}, timeout, poll).Should(Succeed())
		Consistently(func() string {
			b, _ := os.ReadFile(filepath.Join(dir, "file"))
			return string(b)
		}, 2*time.Second, poll).Should(Equal("kept"))
	})

	It("waits for the first consumer, then provisions on the node its pod was scheduled to", func() {
		ns := newNamespace()
		class := "wffc-" + rand.String(4)
		create(newClass(class, storagev1.VolumeBindingWaitForFirstConsumer, corev1.PersistentVolumeReclaimDelete))
		create(newClaim(ns, "data", "1Gi", class))
		Eventually(func(g Gomega) {
			c := getClaim(ns, "data")(g)
			g.Expect(c.Status.Phase).To(Equal(corev1.ClaimPending))
			cond := meta.FindStatusCondition(c.Status.Conditions, conditions.Ready)
			g.Expect(cond).NotTo(BeNil())
			g.Expect(cond.Reason).To(Equal(corev1alpha1.ReasonWaitForFirstConsumer))
		}, timeout, poll).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(getClaim(ns, "data")(g).Annotations).NotTo(HaveKey(volume.AnnSelectedNode))
		}, time.Second, poll).Should(Succeed())

		By("an unscheduled pod does not choose the node")
		create(podUsing(ns, "consumer", "data", ""))
		Consistently(func(g Gomega) {
			g.Expect(getClaim(ns, "data")(g).Annotations).NotTo(HaveKey(volume.AnnSelectedNode))
		}, time.Second, poll).Should(Succeed())

		By("scheduling the pod to the node")
		p := &corev1alpha1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "consumer"}, p)).To(Succeed())
		p.Spec.NodeName = provisionerNode
		Expect(k8sClient.Update(ctx, p)).To(Succeed())
		provisioned(ns, "data")
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
	})

	It("binds a WaitForFirstConsumer claim to a static volume on the pod's node, not one elsewhere", func() {
		ns := newNamespace()
		class := "static-" + rand.String(4)
		sc := newClass(class, storagev1.VolumeBindingWaitForFirstConsumer, corev1.PersistentVolumeReclaimRetain)
		sc.Provisioner = storagev1alpha1.ProvisionerNone
		create(sc)
		for _, n := range []string{"n1", "n2"} {
			pv := hostPathPV(class+"-"+n, "1Gi")
			pv.Spec.StorageClassName = class
			pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{n}}},
			}}}}
			create(pv)
		}
		readyNode("n2")
		create(newClaim(ns, "data", "1Gi", class))
		create(podUsing(ns, "consumer", "data", "n2"))
		expectBound(ns, "data", class+"-n2")
		Expect(getPV(class + "-n1")(Default).Spec.ClaimRef).To(BeNil())
	})

	It("gives a claim without a class the default class, and provisions it", func() {
		ns := newNamespace()
		class := "default-" + rand.String(4)
		sc := newClass(class, storagev1.VolumeBindingImmediate, corev1.PersistentVolumeReclaimDelete)
		sc.Annotations = map[string]string{volume.AnnDefaultStorageClass: "true"}
		create(sc)
		DeferCleanup(func() { Expect(k8sClient.Delete(ctx, sc)).To(Succeed()) })
		create(newClaim(ns, "data", "1Gi", ""))
		Eventually(func(g Gomega) {
			g.Expect(getClaim(ns, "data")(g).Spec.StorageClassName).To(HaveValue(Equal(class)))
		}, timeout, poll).Should(Succeed())
		provisioned(ns, "data")
	})

	It("grows a provisioned volume when its class allows expansion, and refuses otherwise", func() {
		ns := newNamespace()
		grow, fixed := "grow-"+rand.String(4), "fixed-"+rand.String(4)
		sc := newClass(grow, storagev1.VolumeBindingImmediate, corev1.PersistentVolumeReclaimDelete)
		sc.AllowVolumeExpansion = ptrTo(true)
		create(sc)
		create(newClass(fixed, storagev1.VolumeBindingImmediate, corev1.PersistentVolumeReclaimDelete))
		for claim, class := range map[string]string{"grows": grow, "stays": fixed} {
			create(newClaim(ns, claim, "1Gi", class))
			provisioned(ns, claim)
			c := getClaim(ns, claim)(Default)
			c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("2Gi")
			Expect(k8sClient.Update(ctx, c)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			c := getClaim(ns, "grows")(g)
			g.Expect(c.Status.Capacity).To(HaveKeyWithValue(corev1.ResourceStorage, resource.MustParse("2Gi")))
			g.Expect(getPV(c.Spec.VolumeName)(g).Spec.Capacity).To(HaveKeyWithValue(corev1.ResourceStorage, resource.MustParse("2Gi")))
		}, timeout, poll).Should(Succeed())
		Consistently(func(g Gomega) {
			c := getClaim(ns, "stays")(g)
			g.Expect(c.Status.Capacity).To(HaveKeyWithValue(corev1.ResourceStorage, resource.MustParse("1Gi")))
		}, 2*time.Second, poll).Should(Succeed())
	})
})

func ptrTo[T any](v T) *T { return &v }
