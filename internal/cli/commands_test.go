package cli_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cli-" + rand.String(5)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "c", Image: image}},
			TerminationGracePeriodSeconds: ptr.To[int64](0),
		},
	}
}

func image(obj client.Object) func(Gomega) string {
	return func(g Gomega) string {
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		switch o := obj.(type) {
		case *appsv1alpha1.Deployment:
			return o.Spec.Template.Spec.Containers[0].Image
		case *appsv1alpha1.DaemonSet:
			return o.Spec.Template.Spec.Containers[0].Image
		case *appsv1alpha1.StatefulSet:
			return o.Spec.Template.Spec.Containers[0].Image
		}
		return ""
	}
}

func setImage(obj client.Object, img string) {
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	switch o := obj.(type) {
	case *appsv1alpha1.Deployment:
		o.Spec.Template.Spec.Containers[0].Image = img
	case *appsv1alpha1.DaemonSet:
		o.Spec.Template.Spec.Containers[0].Image = img
	case *appsv1alpha1.StatefulSet:
		o.Spec.Template.Spec.Containers[0].Image = img
	}
	Expect(k8sClient.Patch(ctx, obj, patch)).To(Succeed())
}

func mustSkiff(args ...string) string {
	GinkgoHelper()
	out, err := skiff(args...)
	Expect(err).NotTo(HaveOccurred(), out)
	return out
}

var _ = Describe("rollout", func() {
	It("follows, lists, undoes, restarts, pauses and resumes a Deployment through its controller", func() {
		ns := newNamespace()
		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
		d.Spec.Replicas = ptr.To[int32](2)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		d.Spec.Template = podTemplate("web", "skiff.local/web:v1")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())

		out := mustSkiff("rollout", "status", "deployment/web", "-n", ns, "--timeout", "60s")
		Expect(out).To(HaveSuffix("deployment \"web\" successfully rolled out\n"))

		setImage(d, "skiff.local/web:v2")
		Expect(mustSkiff("rollout", "status", "sdeploy", "web", "-n", ns, "--timeout", "60s")).To(ContainSubstring("successfully rolled out"))
		Expect(mustSkiff("rollout", "history", "deployment/web", "-n", ns)).To(MatchRegexp(`deployment.apps.skiff.dev/web\nREVISION +CHANGE-CAUSE\n1 +<none>\n2 +<none>\n`))
		Expect(mustSkiff("rollout", "history", "deployment/web", "-n", ns, "--revision", "1")).To(ContainSubstring("image: skiff.local/web:v1"))

		By("undo: the controller restores revision 1's template and removes the annotation")
		Expect(mustSkiff("rollout", "undo", "deployment/web", "-n", ns)).To(Equal("deployment.apps.skiff.dev/web rolled back\n"))
		Eventually(image(d), 30*time.Second).Should(Equal("skiff.local/web:v1"))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			g.Expect(d.Annotations).NotTo(HaveKey(appsv1alpha1.AnnotationRollbackTo))
		}, 30*time.Second).Should(Succeed())
		mustSkiff("rollout", "status", "deployment/web", "-n", ns, "--timeout", "60s")
		// Revision 1 came back as revision 3, as upstream renumbers it.
		Expect(mustSkiff("rollout", "history", "deployment/web", "-n", ns)).To(MatchRegexp(`\n2 +<none>\n3 +<none>\n`))
		out, err := skiff("rollout", "undo", "deployment/web", "-n", ns, "--to-revision", "9")
		Expect(err).To(MatchError(ContainSubstring("unable to find specified revision 9")), out)

		By("restart: a new template annotation rolls every pod")
		Expect(mustSkiff("rollout", "restart", "deployment/web", "-n", ns)).To(Equal("deployment.apps.skiff.dev/web restarted\n"))
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		Expect(d.Spec.Template.Annotations).To(HaveKey("kubectl.kubernetes.io/restartedAt"))
		mustSkiff("rollout", "status", "deployment/web", "-n", ns, "--timeout", "60s")
		Expect(mustSkiff("rollout", "history", "deployment/web", "-n", ns)).To(MatchRegexp(`\n4 +<none>\n`))

		By("pause: the controller reports it, and restart and undo refuse")
		Expect(mustSkiff("rollout", "pause", "deployment/web", "-n", ns)).To(Equal("deployment.apps.skiff.dev/web paused\n"))
		Expect(mustSkiff("rollout", "pause", "deployment/web", "-n", ns)).To(ContainSubstring("already paused"))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
			c := meta.FindStatusCondition(d.Status.Conditions, appsv1alpha1.DeploymentProgressing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(appsv1alpha1.ReasonDeploymentPaused))
		}, 30*time.Second).Should(Succeed())
		_, err = skiff("rollout", "restart", "deployment/web", "-n", ns)
		Expect(err).To(MatchError(ContainSubstring("can't restart paused deployment")))
		_, err = skiff("rollout", "undo", "deployment/web", "-n", ns)
		Expect(err).To(MatchError(ContainSubstring("cannot rollback a paused deployment")))
		setImage(d, "skiff.local/web:v3")
		Consistently(func(g Gomega) int {
			var list appsv1alpha1.ReplicaSetList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			return len(list.Items)
		}, 2*time.Second, 200*time.Millisecond).Should(Equal(3), "a paused Deployment makes no new ReplicaSet")

		Expect(mustSkiff("rollout", "resume", "deployment/web", "-n", ns)).To(Equal("deployment.apps.skiff.dev/web resumed\n"))
		Expect(mustSkiff("rollout", "status", "deployment/web", "-n", ns, "--timeout", "60s")).To(ContainSubstring("successfully rolled out"))
		Expect(mustSkiff("rollout", "history", "deployment/web", "-n", ns)).To(MatchRegexp(`\n5 +<none>\n`))
	})

	It("undoes a DaemonSet from its ControllerRevisions and refuses to pause it", func() {
		ns := newNamespace()
		ds := &appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns}}
		ds.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "agent"}}
		ds.Spec.Template = podTemplate("agent", "skiff.local/agent:v1")
		Expect(k8sClient.Create(ctx, ds)).To(Succeed())
		Expect(mustSkiff("rollout", "status", "ds/agent", "-n", ns, "--timeout", "60s")).To(HaveSuffix("daemon set \"agent\" successfully rolled out\n"))

		setImage(ds, "skiff.local/agent:v2")
		mustSkiff("rollout", "status", "daemonset/agent", "-n", ns, "--timeout", "60s")
		Expect(mustSkiff("rollout", "history", "daemonset/agent", "-n", ns)).To(MatchRegexp(`\n1 +<none>\n2 +<none>\n`))

		Expect(mustSkiff("rollout", "undo", "daemonset/agent", "-n", ns)).To(Equal("daemonset.apps.skiff.dev/agent rolled back\n"))
		Expect(image(ds)(Default)).To(Equal("skiff.local/agent:v1"))
		Expect(mustSkiff("rollout", "status", "daemonset/agent", "-n", ns, "--timeout", "60s")).To(ContainSubstring("successfully rolled out"))
		Eventually(func(g Gomega) {
			var pods corev1alpha1.PodList
			g.Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns))).To(Succeed())
			g.Expect(pods.Items).To(HaveLen(len(simNodes)))
			for _, p := range pods.Items {
				g.Expect(p.DeletionTimestamp).To(BeNil())
				g.Expect(p.Spec.Containers[0].Image).To(Equal("skiff.local/agent:v1"))
			}
		}, 30*time.Second).Should(Succeed())
		Expect(mustSkiff("rollout", "undo", "daemonset/agent", "-n", ns, "--to-revision", "3")).To(ContainSubstring("skipped rollback (current template already matches revision 3)"))

		_, err := skiff("rollout", "pause", "daemonset/agent", "-n", ns)
		Expect(err).To(MatchError(ContainSubstring("pausing is not supported")))
	})

	It("undoes a StatefulSet and follows its rolling update", func() {
		ns := newNamespace()
		s := &appsv1alpha1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: ns}}
		s.Spec.Replicas = ptr.To[int32](2)
		s.Spec.ServiceName = "db"
		s.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}
		s.Spec.Template = podTemplate("db", "skiff.local/db:v1")
		s.Spec.UpdateStrategy.Type = appsv1.RollingUpdateStatefulSetStrategyType
		Expect(k8sClient.Create(ctx, s)).To(Succeed())
		Expect(mustSkiff("rollout", "status", "sts/db", "-n", ns, "--timeout", "60s")).To(ContainSubstring("statefulset rolling update complete 2 pods at revision db-"))
		setImage(s, "skiff.local/db:v2")
		mustSkiff("rollout", "status", "sts/db", "-n", ns, "--timeout", "90s")
		Expect(mustSkiff("rollout", "undo", "statefulset/db", "-n", ns, "--to-revision", "1")).To(Equal("statefulset.apps.skiff.dev/db rolled back\n"))
		Expect(image(s)(Default)).To(Equal("skiff.local/db:v1"))
		Expect(mustSkiff("rollout", "status", "sts/db", "-n", ns, "--timeout", "90s")).To(ContainSubstring("rolling update complete 2 pods"))
	})
})

var _ = Describe("nodes", Ordered, func() {
	AfterAll(func() {
		for _, n := range simNodes {
			_, _ = skiff("uncordon", n)
		}
	})

	It("lists nodes with kubectl's columns", func() {
		out := mustSkiff("get", "nodes")
		Expect(out).To(MatchRegexp(`^NAME +STATUS +ROLES +AGE +VERSION\n`))
		Expect(out).To(MatchRegexp(`\ncli-0 +Ready +<none> +\S+ +\S+\n`))
		Expect(mustSkiff("get", "nodes", "cli-1", "-o", "wide")).To(ContainSubstring("INTERNAL-IP"))
	})

	It("cordons and uncordons", func() {
		Expect(mustSkiff("cordon", "cli-0")).To(Equal("node/cli-0 cordoned\n"))
		Expect(mustSkiff("cordon", "cli-0")).To(Equal("node/cli-0 already cordoned\n"))
		Expect(mustSkiff("get", "nodes", "cli-0")).To(ContainSubstring("Ready,SchedulingDisabled"))
		Expect(mustSkiff("uncordon", "cli-0")).To(Equal("node/cli-0 uncordoned\n"))
		n := &corev1alpha1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: "cli-0"}, n)).To(Succeed())
		Expect(n.Spec.Unschedulable).To(BeFalse())
	})

	It("drains a node: its Deployment pods move to the other node, its DaemonSet pod stays", func() {
		ns := newNamespace()
		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
		d.Spec.Replicas = ptr.To[int32](4)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
		d.Spec.Template = podTemplate("web", "skiff.local/web:v1")
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		ds := &appsv1alpha1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "logs", Namespace: ns}}
		ds.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "logs"}}
		ds.Spec.Template = podTemplate("logs", "skiff.local/logs:v1")
		Expect(k8sClient.Create(ctx, ds)).To(Succeed())
		mustSkiff("rollout", "status", "deployment/web", "-n", ns, "--timeout", "60s")
		mustSkiff("rollout", "status", "daemonset/logs", "-n", ns, "--timeout", "60s")
		podsOn := func(node, app string) int {
			var pods corev1alpha1.PodList
			Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": app})).To(Succeed())
			n := 0
			for _, p := range pods.Items {
				if p.Spec.NodeName == node && p.DeletionTimestamp == nil {
					n++
				}
			}
			return n
		}
		// Drain a node that runs some of the Deployment's pods.
		target, other := "", ""
		Eventually(func(g Gomega) {
			var pods corev1alpha1.PodList
			g.Expect(k8sClient.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"app": "web"})).To(Succeed())
			g.Expect(pods.Items).NotTo(BeEmpty())
			g.Expect(pods.Items[0].Spec.NodeName).NotTo(BeEmpty())
			target = pods.Items[0].Spec.NodeName
		}, 30*time.Second).Should(Succeed())
		other = simNodes[0]
		if other == target {
			other = simNodes[1]
		}

		out, err := skiff("drain", target, "--pod-selector", "app in (web,logs)")
		Expect(err).To(MatchError(ContainSubstring("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "+ns+"/logs-")), out)

		out = mustSkiff("drain", target, "--ignore-daemonsets", "--pod-selector", "app in (web,logs)", "--timeout", "60s")
		Expect(out).To(ContainSubstring("node/" + target + " already cordoned"))
		Expect(out).To(ContainSubstring("Warning: ignoring DaemonSet-managed Pods: " + ns + "/logs-"))
		Expect(out).To(ContainSubstring("evicting pod " + ns + "/web-"))
		Expect(out).To(HaveSuffix("node/" + target + " drained\n"))
		// "evicting pod NS/NAME" once per pod; a 429 (the API server's own
		// under load) prints "error when evicting pods/..." and is retried.
		// The selector spans namespaces, as kubectl's drain does, so pods
		// that other specs left on the node are evicted too: count them all.
		Expect(strings.Count(out, "evicted\n")).To(Equal(strings.Count(out, "evicting pod ")), out)

		Expect(podsOn(target, "web")).To(BeZero())
		Expect(podsOn(target, "logs")).To(Equal(1))
		Eventually(func() int { return podsOn(other, "web") }, 30*time.Second).Should(Equal(4))
		Expect(mustSkiff("get", "nodes", target)).To(ContainSubstring("SchedulingDisabled"))
	})
})
