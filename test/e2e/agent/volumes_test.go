package agent_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/volume"
	"github.com/skiff-dev/skiff/internal/manager"
)

// Persistent volumes on real containers: skiff-controller-manager (the
// scheduler, the volume controllers and the StatefulSet controller, in this
// process) and the agent, whose skiff.dev/local-path provisioner makes each
// volume a directory under its root.
var _ = Describe("persistent volumes on real containers", Ordered, func() {
	var ns, deleteClass, retainClass string

	BeforeAll(func() {
		ns = newNamespace()
		mgr, err := manager.New(cp.Config, manager.Options{MetricsAddr: "0", ProbeAddr: "0",
			Areas: []string{"apps", "scheduler", "volumes"}, SkipNameValidation: true})
		Expect(err).NotTo(HaveOccurred())
		mctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer GinkgoRecover()
			Expect(mgr.Start(mctx)).To(Succeed())
		}()
		DeferCleanup(func() { cancel(); <-done })

		suffix := rand.String(4)
		deleteClass, retainClass = "e2e-delete-"+suffix, "e2e-retain-"+suffix
		for name, policy := range map[string]corev1.PersistentVolumeReclaimPolicy{deleteClass: corev1.PersistentVolumeReclaimDelete, retainClass: corev1.PersistentVolumeReclaimRetain} {
			sc := &storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: storagev1alpha1.ProvisionerLocalPath,
				ReclaimPolicy: ptr.To(policy), VolumeBindingMode: ptr.To(storagev1.VolumeBindingWaitForFirstConsumer)}
			Expect(k8sClient.Create(ctx, sc)).To(Succeed())
			DeferCleanup(func() { _ = k8sClient.Delete(ctx, sc) })
		}
	})

	claim := func(name, class string) *corev1alpha1.PersistentVolumeClaim {
		c := &corev1alpha1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		c.Spec.StorageClassName = &class
		c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}
		Expect(k8sClient.Create(ctx, c)).To(Succeed())
		return c
	}
	// runOnce runs a pod that the scheduler places, with the claim at
	// /data, and waits until it ends; it returns the pod's phase.
	runOnce := func(name, claimName, script string, readOnly bool) corev1.PodPhase {
		p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		p.Spec.RestartPolicy = corev1.RestartPolicyNever
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
		p.Spec.Containers = []corev1.Container{{Name: "main", Image: busyboxImage, Command: []string{"sh", "-c", script},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claimName, ReadOnly: readOnly}}}}
		onSuiteNode(&p.Spec)
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		var phase corev1.PodPhase
		Eventually(func(g Gomega) corev1.PodPhase {
			phase = get(p)(g).Status.Phase
			return phase
		}, 2*time.Minute, 250*time.Millisecond).Should(BeElementOf(corev1.PodSucceeded, corev1.PodFailed))
		return phase
	}
	deletePod := func(name string) {
		p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, p))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), &corev1alpha1.Pod{}))
		}, time.Minute, 250*time.Millisecond).Should(BeTrue())
	}
	boundDir := func(claimName string) (string, string) {
		var pvName, dir string
		Eventually(func(g Gomega) {
			c := &corev1alpha1.PersistentVolumeClaim{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: claimName}, c)).To(Succeed())
			g.Expect(c.Status.Phase).To(Equal(corev1.ClaimBound))
			g.Expect(c.Annotations).To(HaveKeyWithValue(volume.AnnSelectedNode, nodeName))
			pv := &corev1alpha1.PersistentVolume{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: c.Spec.VolumeName}, pv)).To(Succeed())
			g.Expect(pv.Spec.Local).NotTo(BeNil())
			pvName, dir = pv.Name, pv.Spec.Local.Path
		}, time.Minute, 250*time.Millisecond).Should(Succeed())
		Expect(dir).To(HavePrefix(filepath.Join(rootDir, "local-path") + "/"))
		return pvName, dir
	}
	pvGone := func(name string) func() bool {
		return func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKey{Name: name}, &corev1alpha1.PersistentVolume{}))
		}
	}

	It("keeps what a pod wrote for the next pod on the claim, mounts it read-only when asked, and deletes it with the claim (reclaim Delete)", func() {
		claim("data", deleteClass)
		token := "token-" + rand.String(8)
		Expect(runOnce("writer", "data", "echo "+token+" > /data/file", false)).To(Equal(corev1.PodSucceeded))
		pvName, dir := boundDir("data")
		b, err := os.ReadFile(filepath.Join(dir, "file"))
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(string(b))).To(Equal(token))
		deletePod("writer")

		Expect(runOnce("reader", "data", `test "$(cat /data/file)" = `+token, false)).To(Equal(corev1.PodSucceeded))
		Expect(runOnce("ro-reader", "data", `if echo x > /data/other; then exit 1; fi; test "$(cat /data/file)" = `+token, true)).To(Equal(corev1.PodSucceeded))
		Expect(filepath.Join(dir, "other")).NotTo(BeAnExistingFile())

		By("a claim in use by a running pod is kept until the pod goes")
		p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "holder"}}
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		p.Spec.Containers = []corev1.Container{{Name: "main", Image: busyboxImage, Command: []string{"sleep", "3600"},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
		onSuiteNode(&p.Spec)
		Expect(k8sClient.Create(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) corev1.PodPhase { return get(p)(g).Status.Phase }, time.Minute, 250*time.Millisecond).Should(Equal(corev1.PodRunning))
		Expect(k8sClient.Delete(ctx, &corev1alpha1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"}})).To(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "data"}, &corev1alpha1.PersistentVolumeClaim{})).To(Succeed())
			g.Expect(dir).To(BeADirectory())
		}, 3*time.Second, 250*time.Millisecond).Should(Succeed())

		By("once no pod uses it, the claim goes, and with reclaim Delete its directory and volume")
		deletePod("holder")
		for _, name := range []string{"reader", "ro-reader"} {
			deletePod(name)
		}
		Eventually(pvGone(pvName), time.Minute, 250*time.Millisecond).Should(BeTrue())
		Expect(dir).NotTo(BeAnExistingFile())
	})

	It("keeps the data and leaves the volume Released when the claim of a Retain class is deleted", func() {
		claim("kept", retainClass)
		Expect(runOnce("keeper", "kept", "echo precious > /data/file", false)).To(Equal(corev1.PodSucceeded))
		pvName, dir := boundDir("kept")
		DeferCleanup(func() {
			pv := &corev1alpha1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: pvName}}
			_ = k8sClient.Delete(ctx, pv)
			_ = os.RemoveAll(dir)
		})
		deletePod("keeper")
		Expect(k8sClient.Delete(ctx, &corev1alpha1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kept"}})).To(Succeed())
		Eventually(func(g Gomega) corev1.PersistentVolumePhase {
			pv := &corev1alpha1.PersistentVolume{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: pvName}, pv)).To(Succeed())
			return pv.Status.Phase
		}, time.Minute, 250*time.Millisecond).Should(Equal(corev1.VolumeReleased))
		Consistently(func() string {
			b, _ := os.ReadFile(filepath.Join(dir, "file"))
			return string(b)
		}, 3*time.Second, 250*time.Millisecond).Should(Equal("precious\n"))
	})

	It("gives each StatefulSet ordinal its own provisioned volume, which a recreated pod finds again", func() {
		labels := map[string]string{"app": "db"}
		set := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}}
		set.Spec.Replicas = ptr.To[int32](2)
		set.Spec.ServiceName = "db"
		set.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
		set.Spec.Template.Labels = labels
		set.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "main", Image: busyboxImage,
			Command:      []string{"sh", "-c", "hostname >> /data/boots; exec sleep 3600"},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}}
		onSuiteNode(&set.Spec.Template.Spec)
		tmpl := corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data"}}
		tmpl.Spec.StorageClassName = &deleteClass
		tmpl.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
		tmpl.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("64Mi")}
		set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{tmpl}
		Expect(k8sClient.Create(ctx, set)).To(Succeed())

		boots := func(dir string) string {
			b, _ := os.ReadFile(filepath.Join(dir, "boots"))
			return string(b)
		}
		Eventually(func(g Gomega) {
			got := &appsv1alpha1.StatefulSet{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(set), got)).To(Succeed())
			g.Expect(got.Status.ReadyReplicas).To(BeEquivalentTo(2))
		}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
		_, dir0 := boundDir("data-db-0")
		_, dir1 := boundDir("data-db-1")
		Expect(dir0).NotTo(Equal(dir1))
		Eventually(func() string { return boots(dir0) }, 10*time.Second, 250*time.Millisecond).Should(Equal("db-0\n"))
		Eventually(func() string { return boots(dir1) }, 10*time.Second, 250*time.Millisecond).Should(Equal("db-1\n"))

		By("deleting pod db-0: its replacement boots on the same data")
		old := &corev1alpha1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-0"}, old)).To(Succeed())
		Expect(k8sClient.Delete(ctx, old)).To(Succeed())
		Eventually(func(g Gomega) {
			p := &corev1alpha1.Pod{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "db-0"}, p)).To(Succeed())
			g.Expect(p.UID).NotTo(Equal(old.UID))
			g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning))
		}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
		Eventually(func() string { return boots(dir0) }, 30*time.Second, 250*time.Millisecond).Should(Equal("db-0\ndb-0\n"))
		Expect(boots(dir1)).To(Equal("db-1\n"))

		Expect(k8sClient.Delete(ctx, set)).To(Succeed())
	})
})
