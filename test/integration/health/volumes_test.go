package health_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// hostPathVolume is a statically created volume of size in class "".
func hostPathVolume(size string, policy corev1.PersistentVolumeReclaimPolicy) *corev1alpha1.PersistentVolume {
	n := name("pv")
	pv := &corev1alpha1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: n}}
	pv.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	pv.Spec.PersistentVolumeReclaimPolicy = policy
	pv.Spec.HostPath = &corev1.HostPathVolumeSource{Path: "/tmp/" + n}
	return pv
}

func claim(ns, n, size string) *corev1alpha1.PersistentVolumeClaim {
	c := &corev1alpha1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}
	c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	c.Spec.StorageClassName = ptr.To("")
	c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}
	return c
}

var _ = Describe("kstatus and Argo CD health of volumes and disruption budgets, through the real controllers", func() {
	It("PersistentVolume and PersistentVolumeClaim: Current when Available or Bound, InProgress while a claim waits, Failed for a retained Released volume", func() {
		ns := newNamespace()
		pv := hostPathVolume("1Gi", corev1.PersistentVolumeReclaimRetain)
		create(pv)
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, pv) })
		expectHealth(pv, kstatus.StatusCurrent)

		waiting := create(claim(ns, "too-big", "100Gi"))
		expectHealth(waiting, kstatus.StatusInProgress)

		bound := create(claim(ns, "data", "1Gi"))
		expectHealth(bound, kstatus.StatusCurrent)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pv), pv)).To(Succeed())
			g.Expect(pv.Status.Phase).To(Equal(corev1.VolumeBound))
		}).Should(Succeed())
		expectHealth(pv, kstatus.StatusCurrent)

		// Its claim gone, a retained volume waits for a person to clear claimRef.
		Expect(k8sClient.Delete(ctx, bound)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(pv), pv)).To(Succeed())
			g.Expect(pv.Status.Phase).To(Equal(corev1.VolumeReleased))
		}).Should(Succeed())
		expectHealth(pv, kstatus.StatusFailed)
	})

	It("PodDisruptionBudget: Current when met, InProgress while not, Failed when its pods cannot be counted", func() {
		ns := newNamespace()
		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		d.Spec.Replicas = ptr.To[int32](2)
		d.Spec.Selector = selector("web")
		d.Spec.Template = template("web")
		create(d)
		budget := func(n, app string, minAvailable, maxUnavailable *intstr.IntOrString) *policyv1alpha1.PodDisruptionBudget {
			pdb := &policyv1alpha1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}}
			pdb.Spec.Selector = selector(app)
			pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable = minAvailable, maxUnavailable
			return pdb
		}
		met := create(budget("met", "web", nil, ptr.To(intstr.FromInt32(1))))
		expectHealth(met, kstatus.StatusCurrent)
		unmet := create(budget("unmet", "web", ptr.To(intstr.FromInt32(3)), nil))
		expectHealth(unmet, kstatus.StatusInProgress)

		ds := &appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agents"}}
		ds.Spec.Selector = selector("agents")
		ds.Spec.Template = template("agents")
		create(ds)
		uncountable := create(budget("uncountable", "agents", nil, ptr.To(intstr.FromString("10%"))))
		expectHealth(uncountable, kstatus.StatusFailed)
	})
})
