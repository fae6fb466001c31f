package health_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri/fake"
	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name("health")}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	DeferCleanup(func() { _ = k8sClient.Delete(ctx, ns) })
	return ns.Name
}

// template is a pod template labelled app=<app>; mutate adjusts it.
func template(app string, mutate ...func(*corev1.PodTemplateSpec)) corev1.PodTemplateSpec {
	t := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
	for _, m := range mutate {
		m(&t)
	}
	return t
}

func selector(app string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
}

// tooBig makes pods that no node fits.
func tooBig(t *corev1.PodTemplateSpec) {
	t.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1000")}
}

// exits makes the containers exit with code after a second.
func exits(code string) func(*corev1.PodTemplateSpec) {
	return func(t *corev1.PodTemplateSpec) {
		t.Annotations = map[string]string{fake.AnnotationExitCode: code}
		t.Spec.RestartPolicy = corev1.RestartPolicyNever
	}
}

func create(obj client.Object) client.Object {
	Expect(k8sClient.Create(ctx, obj)).To(Succeed())
	return obj
}

var _ = Describe("kstatus conventions and Argo CD health, through the real controllers", func() {
	It("Deployment and its ReplicaSet: Current when rolled out, InProgress while a change rolls, Failed past the progress deadline", func() {
		ns := newNamespace()
		d := create(&appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: selector("web"), Template: template("web")}}).(*appsv1alpha1.Deployment)
		expectHealth(d, kstatus.StatusCurrent)
		rsList := &appsv1alpha1.ReplicaSetList{}
		Expect(k8sClient.List(ctx, rsList, client.InNamespace(ns))).To(Succeed())
		Expect(rsList.Items).To(HaveLen(1))
		expectHealth(&rsList.Items[0], kstatus.StatusCurrent)

		By("a new template whose pods fit no node: in progress, then stalled at the deadline")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		d.Spec.Template = template("web", tooBig)
		d.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
		Expect(k8sClient.Update(ctx, d)).To(Succeed())
		expectHealth(d, kstatus.StatusInProgress)
		expectHealth(d, kstatus.StatusFailed)

		By("paused: Argo CD says Suspended")
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		d.Spec.Template = template("web")
		d.Spec.Paused = true
		Expect(k8sClient.Update(ctx, d)).To(Succeed())
		Eventually(func(g Gomega) { g.Expect(judge(g, d).Argo).To(Equal("Suspended")) }).Should(Succeed())
	})

	It("ReplicaSet: InProgress while its pods cannot be placed", func() {
		ns := newNamespace()
		rs := create(&appsv1alpha1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "big"},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](1), Selector: selector("big"), Template: template("big", tooBig)}})
		expectHealth(rs, kstatus.StatusInProgress)
	})

	It("StatefulSet: Current once its pods are ready in order", func() {
		ns := newNamespace()
		ss := create(&appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
			Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2), ServiceName: "db", Selector: selector("db"), Template: template("db")}})
		expectHealth(ss, kstatus.StatusCurrent)
	})

	It("DaemonSet: Current once a pod runs on every node", func() {
		ns := newNamespace()
		ds := create(&appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "agent"},
			Spec: appsv1.DaemonSetSpec{Selector: selector("agent"), Template: template("agent")}}).(*appsv1alpha1.DaemonSet)
		expectHealth(ds, kstatus.StatusCurrent)
		Expect(ds.Status.NumberReady).To(BeNumerically(">=", simNodes))
	})

	It("Job: Current when complete, Failed past its backoff limit, Suspended for Argo CD", func() {
		ns := newNamespace()
		ok := create(&batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ok"},
			Spec: batchv1.JobSpec{Template: template("ok", exits("0"))}})
		expectHealth(ok, kstatus.StatusCurrent)
		bad := create(&batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bad"},
			Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: template("bad", exits("1"))}})
		expectHealth(bad, kstatus.StatusFailed)
		held := create(&batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "held"},
			Spec: batchv1.JobSpec{Suspend: ptr.To(true), Template: template("held", exits("0"))}})
		expectHealth(held, kstatus.StatusCurrent, "Suspended")
	})

	It("CronJob: Current while it follows its schedule, Failed for a schedule it cannot parse", func() {
		ns := newNamespace()
		jt := batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: template("cron", exits("0"))}}
		good := create(&batchv1alpha1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hourly"},
			Spec: batchv1.CronJobSpec{Schedule: "0 * * * *", JobTemplate: jt}})
		expectHealth(good, kstatus.StatusCurrent)
		// The webhook that refuses such a schedule at admission is not
		// served in this suite, so the controller meets it.
		bad := create(&batchv1alpha1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "never"},
			Spec: batchv1.CronJobSpec{Schedule: "61 * * * *", JobTemplate: jt}})
		expectHealth(bad, kstatus.StatusFailed)
	})

	It("Pod: Current when ready or succeeded, InProgress while unschedulable, Failed when it failed", func() {
		ns := newNamespace()
		mk := func(n string, mutate ...func(*corev1.PodTemplateSpec)) client.Object {
			t := template(n, mutate...)
			return create(&corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n, Annotations: t.Annotations}, Spec: t.Spec})
		}
		expectHealth(mk("running"), kstatus.StatusCurrent)
		expectHealth(mk("pending", tooBig), kstatus.StatusInProgress)
		expectHealth(mk("done", exits("0")), kstatus.StatusCurrent)
		expectHealth(mk("failed", exits("3")), kstatus.StatusFailed)
	})

	It("Service and its EndpointSlice: Current once allocated; Failed for a ClusterIP outside the range", func() {
		ns := newNamespace()
		create(&corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backend", Labels: map[string]string{"app": "backend"}},
			Spec: template("backend").Spec})
		svc := create(&corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "backend"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "backend"}, Ports: []corev1.ServicePort{{Port: 80}}}})
		expectHealth(svc, kstatus.StatusCurrent)
		slices := &corev1alpha1.EndpointSliceList{}
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.List(ctx, slices, client.InNamespace(ns))).To(Succeed())
			g.Expect(slices.Items).NotTo(BeEmpty())
		}).Should(Succeed())
		expectHealth(&slices.Items[0], kstatus.StatusCurrent)

		outside := create(&corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "outside"},
			Spec: corev1.ServiceSpec{ClusterIP: "192.0.2.10", Ports: []corev1.ServicePort{{Port: 80}}}})
		expectHealth(outside, kstatus.StatusFailed)
	})

	It("Node: Current while its agent posts Ready", func() {
		expectHealth(&corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: "health-0"}}, kstatus.StatusCurrent)
	})

	It("StorageClass: Healthy for Argo CD as configuration", func() {
		sc := create(&storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name("local")}, Provisioner: "kubernetes.io/no-provisioner"})
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, sc) })
		Eventually(func(g Gomega) { g.Expect(judge(g, sc).Argo).To(Equal("Healthy")) }).Should(Succeed())
	})
})
