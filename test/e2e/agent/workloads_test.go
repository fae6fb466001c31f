package agent_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/manager"
)

// onSuiteNode keeps a workload's pods on the suite's real node: other specs
// leave simulated Nodes registered, which no agent serves after them.
func onSuiteNode(spec *corev1.PodSpec) {
	spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{nodeName}}},
		}}},
	}}
}

// The whole path of a user's workload: skiff-controller-manager (every
// controller and the scheduler, in this process) and the agent on a managed
// containerd, with pods the scheduler places on the suite's node.
var _ = Describe("workloads on real containers", Ordered, func() {
	var ns string
	var stopManager context.CancelFunc

	BeforeAll(func() {
		ns = newNamespace()
		// Not the node controllers: IPAM would give the suite's node another
		// pod CIDR than the agent's flag, and the other specs need neither.
		mgr, err := manager.New(cp.Config, manager.Options{MetricsAddr: "0", ProbeAddr: "0",
			Areas: []string{"apps", "batch", "scheduler", "services"}, SkipNameValidation: true})
		Expect(err).NotTo(HaveOccurred())
		mctx, cancel := context.WithCancel(ctx)
		stopManager = cancel
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer GinkgoRecover()
			Expect(mgr.Start(mctx)).To(Succeed())
		}()
		DeferCleanup(func() { cancel(); <-done })
	})
	AfterAll(func() { stopManager() })

	It("rolls a 3-replica Deployment to a new image with every pod serving", func() {
		if reg == nil {
			Skip("docker-registry is not installed: the second image tag comes from the suite's registry")
		}
		files, cfg, err := busyboxFiles()
		Expect(err).NotTo(HaveOccurred())
		Expect(reg.push("skiff/busybox", "v2", files, cfg)).To(Succeed())

		labels := map[string]string{"app": "web"}
		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
		d.Spec.Replicas = ptr.To[int32](3)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
		d.Spec.Template.Labels = labels
		d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
		d.Spec.Template.Spec.Containers = []corev1.Container{webContainer()}
		onSuiteNode(&d.Spec.Template.Spec)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())

		serving := func() (int, []string) {
			list := &corev1alpha1.PodList{}
			Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels(labels))).To(Succeed())
			n, images := 0, []string{}
			for _, p := range list.Items {
				if p.DeletionTimestamp != nil || !meta.IsStatusConditionTrue(p.Status.Conditions, conditions.Ready) {
					continue
				}
				if _, err := httpGet(fmt.Sprintf("http://%s:8080/", p.Status.PodIP)); err == nil {
					n++
					images = append(images, p.Spec.Containers[0].Image)
				}
			}
			return n, images
		}
		Eventually(func() int { n, _ := serving(); return n }, 90*time.Second, 250*time.Millisecond).Should(Equal(3))

		// With 3 replicas the defaults give maxUnavailable 0 and maxSurge 1:
		// three pods serve at every moment of the rollout.
		var mu sync.Mutex
		minServing := 3
		stop := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			defer GinkgoRecover()
			for {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				n, _ := serving()
				mu.Lock()
				minServing = min(minServing, n)
				mu.Unlock()
			}
		}()
		newImage := reg.host + "/skiff/busybox:v2"
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
		patch := client.MergeFrom(d.DeepCopy())
		d.Spec.Template.Spec.Containers[0].Image = newImage
		Expect(k8sClient.Patch(ctx, d, patch)).To(Succeed())
		Eventually(func(g Gomega) {
			got := &appsv1alpha1.Deployment{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(d), got)).To(Succeed())
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.UpdatedReplicas).To(BeEquivalentTo(3))
			g.Expect(got.Status.AvailableReplicas).To(BeEquivalentTo(3))
			g.Expect(got.Status.Replicas).To(BeEquivalentTo(3))
			n, images := serving()
			g.Expect(n).To(Equal(3))
			g.Expect(images).To(HaveEach(newImage))
		}, 3*time.Minute, 500*time.Millisecond).Should(Succeed())
		close(stop)
		<-watched
		mu.Lock()
		defer mu.Unlock()
		Expect(minServing).To(Equal(3), "fewer than three pods served during the rollout")
	})

	It("reaches the Deployment's pods through a Service ClusterIP from another pod", func() {
		svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
		svc.Spec.Selector = map[string]string{"app": "web"}
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
		Expect(k8sClient.Create(ctx, svc)).To(Succeed())
		var clusterIP string
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(svc), svc)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(svc.Status.Conditions, conditions.Ready)).To(BeTrue())
			clusterIP = svc.Spec.ClusterIP
		}, time.Minute, 200*time.Millisecond).Should(Succeed())

		caller := createPod(ns, "client", []corev1.Container{{Name: "c", Image: busyboxImage, Command: []string{"sleep", "3600"}}})
		Eventually(func(g Gomega) bool { return isReady(g, caller) }, time.Minute, 200*time.Millisecond).Should(BeTrue())
		var id string
		Eventually(func(g Gomega) { id = containerID(g, caller, 0) }, time.Minute, 200*time.Millisecond).Should(Succeed())

		// busybox-static's wget crashes; nc speaks HTTP/1.0 well enough.
		get := func(addr string) []string {
			return []string{"sh", "-c", `printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 ` + addr + ` 80`}
		}
		Eventually(func() string {
			out, stderr, err := runtime.ExecSync(ctx, id, get(clusterIP), 10*time.Second)
			if err != nil {
				return err.Error() + string(stderr)
			}
			return string(out)
		}, time.Minute, time.Second).Should(ContainSubstring("hello from web-"))

		start := time.Now()
		_, stderr, err := runtime.ExecSync(ctx, id, get("10.112.255.254"), 10*time.Second)
		Expect(err).To(HaveOccurred(), "an address of the service range with no Service must not answer")
		Expect(string(stderr)).To(ContainSubstring("refused"))
		Expect(time.Since(start)).To(BeNumerically("<", 3*time.Second), "the refusal must be immediate, not a time-out")
	})

	newJob := func(name, script string, mutate func(*batchv1alpha1.Job)) *batchv1alpha1.Job {
		j := &batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		j.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](1)
		j.Spec.Template.Spec.Containers = []corev1.Container{{Name: "main", Image: busyboxImage, Command: []string{"sh", "-c", script}}}
		onSuiteNode(&j.Spec.Template.Spec)
		if mutate != nil {
			mutate(j)
		}
		Expect(k8sClient.Create(ctx, j)).To(Succeed())
		return j
	}
	jobCondition := func(j *batchv1alpha1.Job, typ string) func(g Gomega) *metav1.Condition {
		return func(g Gomega) *metav1.Condition {
			got := &batchv1alpha1.Job{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(j), got)).To(Succeed())
			c := meta.FindStatusCondition(got.Status.Conditions, typ)
			g.Expect(c).NotTo(BeNil(), "no %s condition yet: %+v", typ, got.Status)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			return c
		}
	}

	It("completes a Job of 5 completions, 2 at a time", func() {
		j := newJob("five", "echo done", func(j *batchv1alpha1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](5), ptr.To[int32](2)
		})
		Eventually(jobCondition(j, batchv1alpha1.JobComplete), 3*time.Minute, 250*time.Millisecond).Should(Not(BeNil()))
		got := &batchv1alpha1.Job{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(j), got)).To(Succeed())
		Expect(got.Status.Succeeded).To(BeEquivalentTo(5))
		Expect(got.Status.Failed).To(BeZero())
	})

	It("stops a Job whose pods exit 1 at its backoffLimit", func() {
		j := newJob("failing", "exit 1", func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](1) })
		Eventually(jobCondition(j, batchv1alpha1.JobFailed), 3*time.Minute, 250*time.Millisecond).Should(Not(BeNil()))
		got := &batchv1alpha1.Job{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(j), got)).To(Succeed())
		Expect(meta.FindStatusCondition(got.Status.Conditions, batchv1alpha1.JobFailed).Reason).To(Equal(batchv1alpha1.ReasonBackoffLimitExceeded))
		Expect(got.Status.Failed).To(BeEquivalentTo(2))
	})

	It("ends a Job at once on an exit code its pod failure policy names", func() {
		start := time.Now()
		j := newJob("policy", "exit 42", func(j *batchv1alpha1.Job) {
			j.Spec.BackoffLimit = ptr.To[int32](6)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: ptr.To("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
			}}}
		})
		Eventually(func(g Gomega) string {
			return jobCondition(j, batchv1alpha1.JobFailed)(g).Reason
		}, 2*time.Minute, 250*time.Millisecond).Should(Equal(batchv1alpha1.ReasonPodFailurePolicy))
		got := &batchv1alpha1.Job{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(j), got)).To(Succeed())
		Expect(got.Status.Failed).To(BeEquivalentTo(1), "one failure ended it: no retry")
		GinkgoWriter.Printf("Job failed by its pod failure policy %s after create\n", time.Since(start).Round(10*time.Millisecond))
	})
})
