package batch

import (
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func newJob(ns string, mutate func(*batchv1alpha1.Job)) *batchv1alpha1.Job {
	job := &batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Name: "job", Namespace: ns}}
	job.Spec.Template.Spec = corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
	}
	if mutate != nil {
		mutate(job)
	}
	Expect(k8sClient.Create(ctx, job)).To(Succeed())
	return job
}

// podsOf returns the Job's pods that are not being deleted.
func podsOf(job *batchv1alpha1.Job) []*corev1alpha1.Pod {
	GinkgoHelper()
	list := &corev1alpha1.PodList{}
	Expect(k8sClient.List(ctx, list, client.InNamespace(job.Namespace), client.MatchingLabels{LabelJobName: job.Name})).To(Succeed())
	var out []*corev1alpha1.Pod
	for i := range list.Items {
		if list.Items[i].DeletionTimestamp.IsZero() {
			out = append(out, &list.Items[i])
		}
	}
	return out
}

func activeCount(job *batchv1alpha1.Job) func() int {
	return func() int {
		n := 0
		for _, p := range podsOf(job) {
			if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
				n++
			}
		}
		return n
	}
}

// exitPod plays the node: the pod's container ends with the exit code,
// now by the Job clock (the back-off is measured on it).
func exitPod(pod *corev1alpha1.Pod, code int32) {
	GinkgoHelper()
	exitPodAt(pod, code, fakeClock.Now())
}

// exitPodAt is exitPod with the container's finish time at the given time
// of the Job clock, which the back-off is measured on.
func exitPodAt(pod *corev1alpha1.Pod, code int32, at time.Time) {
	GinkgoHelper()
	pod.Status.Phase = corev1.PodSucceeded
	if code != 0 {
		pod.Status.Phase = corev1.PodFailed
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(at)}}}}
	Expect(k8sClient.Status().Update(ctx, pod)).To(Succeed())
}

func getJob(job *batchv1alpha1.Job) *batchv1alpha1.Job {
	GinkgoHelper()
	got := &batchv1alpha1.Job{}
	Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), got)).To(Succeed())
	return got
}

func tickJob(job *batchv1alpha1.Job) {
	GinkgoHelper()
	j := getJob(job)
	patch := client.MergeFrom(j.DeepCopy())
	if j.Annotations == nil {
		j.Annotations = map[string]string{}
	}
	j.Annotations["test/tick"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	Expect(k8sClient.Patch(ctx, j, patch)).To(Succeed())
}

func conditionReason(job *batchv1alpha1.Job, typ string) func() string {
	return func() string {
		c := meta.FindStatusCondition(getJob(job).Status.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionTrue {
			return ""
		}
		return c.Reason
	}
}

const (
	wait = 15 * time.Second
	poll = 100 * time.Millisecond
)

var _ = Describe("Job controller", func() {
	BeforeEach(func() { fakeClock.SetTime(time.Now()) })

	It("runs completions with at most parallelism pods and completes", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](5), ptr.To[int32](2)
		})
		for done := 0; done < 5; {
			Eventually(activeCount(job), wait, poll).Should(BeNumerically(">", 0))
			Consistently(activeCount(job), 300*time.Millisecond, poll).Should(BeNumerically("<=", 2), "parallelism 2")
			for _, p := range podsOf(job) {
				if p.Status.Phase == "" && done < 5 {
					Expect(p.Finalizers).To(ContainElement(batchv1alpha1.JobTrackingFinalizer))
					exitPod(p, 0)
					done++
				}
			}
		}
		Eventually(conditionReason(job, batchv1alpha1.JobComplete), wait, poll).Should(Equal(batchv1alpha1.ReasonCompletionsReached))
		got := getJob(job)
		Expect(got.Status.Succeeded).To(BeEquivalentTo(5))
		Expect(got.Status.Failed).To(BeEquivalentTo(0))
		Expect(got.Status.CompletionTime).NotTo(BeNil())
		Expect(got.Status.Completions).To(Equal("5/5"))
		Expect(got.Status.DisplayStatus).To(Equal("Complete"))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, conditions.Ready)).To(BeTrue())
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, batchv1alpha1.JobSuccessCriteriaMet)).To(BeTrue())
		Eventually(func() int { return len(podsWithFinalizer(podsOf(job))) }, wait, poll).Should(BeZero(), "every pod released")
	})

	It("stops at backoffLimit with BackoffLimitExceeded, backing off between pods", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](1) })
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
		exitPod(podsOf(job)[0], 1)
		Eventually(func() int32 { return getJob(job).Status.Failed }, wait, poll).Should(BeEquivalentTo(1))
		Consistently(activeCount(job), time.Second, poll).Should(BeZero(), "the replacement waits for the back-off")

		fakeClock.Step(11 * time.Second)
		tickJob(job)
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
		for _, p := range podsOf(job) {
			if p.Status.Phase == "" {
				exitPod(p, 1)
			}
		}
		Eventually(conditionReason(job, batchv1alpha1.JobFailed), wait, poll).Should(Equal(batchv1alpha1.ReasonBackoffLimitExceeded))
		got := getJob(job)
		Expect(got.Status.Failed).To(BeEquivalentTo(2))
		Expect(got.Status.DisplayStatus).To(Equal("Failed"))
		Expect(got.Status.CompletionTime).To(BeNil())
	})

	It("fails at once on an exit code the pod failure policy names", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) {
			j.Spec.Parallelism, j.Spec.Completions = ptr.To[int32](2), ptr.To[int32](4)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
			}}}
			j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
		})
		Eventually(activeCount(job), wait, poll).Should(Equal(2))
		// A node runs the pods: it holds each one with its finalizer until it has stopped it.
		for _, p := range podsOf(job) {
			setNodeFinalizer(p, true)
		}
		exitPod(podsOf(job)[0], 42)
		Eventually(conditionReason(job, batchv1alpha1.JobFailureTarget), wait, poll).Should(Equal(batchv1alpha1.ReasonPodFailurePolicy))
		// The other pod is being stopped; once it ended, the Job is Failed.
		Eventually(func() []*corev1alpha1.Pod { return activeTerminating(job) }, wait, poll).Should(HaveLen(1))
		Consistently(conditionReason(job, batchv1alpha1.JobFailed), time.Second, poll).Should(BeEmpty(), "podReplacementPolicy Failed waits for the pod to stop")
		stopping := activeTerminating(job)[0]
		exitPod(stopping, 137)
		Eventually(conditionReason(job, batchv1alpha1.JobFailed), wait, poll).Should(Equal(batchv1alpha1.ReasonPodFailurePolicy))
		for _, p := range podsOf(job) {
			setNodeFinalizer(p, false)
		}
		setNodeFinalizer(stopping, false)
	})

	It("ignores failures that the pod failure policy ignores", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) {
			j.Spec.BackoffLimit = ptr.To[int32](0)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionIgnore,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}},
			}}}
		})
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
		exitPod(podsOf(job)[0], 3)
		// Not counted, but the replacement waits out the back-off as after
		// any failure: upstream's back-off record counts ignored failures too.
		Consistently(activeCount(job), time.Second, poll).Should(BeZero())
		fakeClock.Step(11 * time.Second)
		tickJob(job)
		Eventually(activeCount(job), wait, poll).Should(Equal(1), "replaced without counting")
		Expect(getJob(job).Status.Failed).To(BeZero())
		Expect(conditionReason(job, batchv1alpha1.JobFailed)()).To(BeEmpty())
	})

	It("runs an Indexed Job with one pod per index", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
		})
		Eventually(activeCount(job), wait, poll).Should(Equal(3))
		seen := map[string]bool{}
		for _, p := range podsOf(job) {
			idx := p.Annotations[AnnotationCompletionIndex]
			seen[idx] = true
			Expect(p.Spec.Hostname).To(Equal("job-" + idx))
			Expect(p.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: EnvCompletionIndex, Value: idx}))
		}
		Expect(seen).To(HaveLen(3))
		for _, p := range podsOf(job) {
			if p.Annotations[AnnotationCompletionIndex] == "1" {
				exitPod(p, 0)
			}
		}
		Eventually(func() string { return getJob(job).Status.CompletedIndexes }, wait, poll).Should(Equal("1"))
		for _, p := range podsOf(job) {
			if p.Status.Phase == "" {
				exitPod(p, 0)
			}
		}
		Eventually(conditionReason(job, batchv1alpha1.JobComplete), wait, poll).ShouldNot(BeEmpty())
		Expect(getJob(job).Status.CompletedIndexes).To(Equal("0-2"))
	})

	It("counts a pod deleted while running as one failure and replaces it", func() {
		ns := newNamespace()
		job := newJob(ns, nil)
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
		first := podsOf(job)[0]
		Expect(k8sClient.Delete(ctx, first)).To(Succeed())
		Eventually(func() int32 { return getJob(job).Status.Failed }, wait, poll).Should(BeEquivalentTo(1))
		Eventually(func() bool {
			err := k8sClient.Get(ctx, client.ObjectKeyFromObject(first), &corev1alpha1.Pod{})
			return apierrors.IsNotFound(err)
		}, wait, poll).Should(BeTrue(), "the finalizer is released once counted")
		fakeClock.Step(11 * time.Second)
		tickJob(job)
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
		Consistently(func() int32 { return getJob(job).Status.Failed }, time.Second, poll).Should(BeEquivalentTo(1), "never counted twice")
	})

	It("keeps the back-off of failures whose pods were deleted", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](10) })
		for failures := int32(1); failures <= 2; failures++ {
			Eventually(activeCount(job), wait, poll).Should(Equal(1))
			for _, p := range podsOf(job) {
				if p.Status.Phase == "" {
					exitPodAt(p, 1, fakeClock.Now())
				}
			}
			Eventually(func() int32 { return getJob(job).Status.Failed }, wait, poll).Should(Equal(failures))
			if failures == 1 {
				fakeClock.Step(11 * time.Second)
				tickJob(job)
			}
		}
		// Two failures: 20 s from the second. The failed pods go; the record stays.
		for _, p := range podsOf(job) {
			Expect(client.IgnoreNotFound(k8sClient.Delete(ctx, p))).To(Succeed())
		}
		Eventually(func() []*corev1alpha1.Pod { return podsOf(job) }, wait, poll).Should(BeEmpty())
		fakeClock.Step(11 * time.Second)
		tickJob(job)
		Consistently(activeCount(job), time.Second, poll).Should(BeZero(), "the back-off of two failures is 20 s, not reset by the deletion")
		fakeClock.Step(10 * time.Second)
		tickJob(job)
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
	})

	It("backs each index off by its own failure count", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism, j.Spec.BackoffLimitPerIndex = ptr.To[int32](2), ptr.To[int32](2), ptr.To[int32](3)
		})
		runningOf := func(idx string) func() []*corev1alpha1.Pod {
			return func() []*corev1alpha1.Pod {
				var out []*corev1alpha1.Pod
				for _, p := range podsOf(job) {
					if p.Annotations[AnnotationCompletionIndex] == idx && p.Status.Phase == "" {
						out = append(out, p)
					}
				}
				return out
			}
		}
		Eventually(activeCount(job), wait, poll).Should(Equal(2))
		for _, p := range podsOf(job) {
			exitPodAt(p, 1, fakeClock.Now())
		}
		// Two failures in all, one per index: each index waits 10 s, not 20.
		Consistently(activeCount(job), time.Second, poll).Should(BeZero())
		fakeClock.Step(11 * time.Second)
		tickJob(job)
		Eventually(activeCount(job), wait, poll).Should(Equal(2))
		for _, idx := range []string{"0", "1"} {
			Expect(runningOf(idx)()).To(ContainElement(HaveField("Annotations", HaveKeyWithValue(AnnotationIndexFailureCount, "1"))))
		}
		Eventually(func() int32 { return getJob(job).Status.Failed }, wait, poll).Should(BeEquivalentTo(2))

		// Index 0 fails again: 20 s for it, while index 1 runs on. Its failed
		// pod is neither counted nor released until the replacement exists,
		// as upstream: the replacement's failure count is read from it, so
		// deleting it in the meantime must not reset the index's count.
		second := runningOf("0")()[0]
		exitPodAt(second, 1, fakeClock.Now())
		Expect(k8sClient.Delete(ctx, second)).To(Succeed())
		fakeClock.Step(11 * time.Second)
		tickJob(job)
		Consistently(runningOf("0"), time.Second, poll).Should(BeEmpty(), "index 0 waits 20 s after its second failure")
		Expect(runningOf("1")()).To(HaveLen(1))
		held := &corev1alpha1.Pod{}
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(second), held)).To(Succeed(), "the failed pod is held for its replacement")
		Expect(held.Finalizers).To(ContainElement(batchv1alpha1.JobTrackingFinalizer))
		Expect(getJob(job).Status.Failed).To(BeEquivalentTo(2), "not counted before it is released")
		fakeClock.Step(10 * time.Second)
		tickJob(job)
		Eventually(runningOf("0"), wait, poll).Should(ConsistOf(HaveField("Annotations", HaveKeyWithValue(AnnotationIndexFailureCount, "2"))))
		Eventually(func() int32 { return getJob(job).Status.Failed }, wait, poll).Should(BeEquivalentTo(3))
		Eventually(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(second), held) }, wait, poll).Should(Satisfy(apierrors.IsNotFound), "released once replaced, and so deleted")
		Consistently(func() int32 { return getJob(job).Status.Failed }, time.Second, poll).Should(BeEquivalentTo(3), "counted once")
	})

	It("fails with DeadlineExceeded after activeDeadlineSeconds and stops its pods", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) { j.Spec.ActiveDeadlineSeconds = ptr.To[int64](30) })
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
		fakeClock.Step(31 * time.Second)
		tickJob(job)
		Eventually(conditionReason(job, batchv1alpha1.JobFailed), wait, poll).Should(Equal(batchv1alpha1.ReasonDeadlineExceeded))
		Eventually(func() int { return len(podsOf(job)) }, wait, poll).Should(BeZero())
	})

	It("creates no pods while suspended and starts them on resume", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) { j.Spec.Suspend = ptr.To(true) })
		Eventually(conditionReason(job, batchv1alpha1.JobSuspended), wait, poll).Should(Equal(batchv1alpha1.ReasonJobSuspended))
		Consistently(activeCount(job), time.Second, poll).Should(BeZero())
		Expect(getJob(job).Status.DisplayStatus).To(Equal("Suspended"))

		j := getJob(job)
		patch := client.MergeFrom(j.DeepCopy())
		j.Spec.Suspend = ptr.To(false)
		Expect(k8sClient.Patch(ctx, j, patch)).To(Succeed())
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
		// The pods are created before the status that records the start is written.
		Eventually(func() *metav1.Time { return getJob(job).Status.StartTime }, wait, poll).ShouldNot(BeNil())
	})

	It("deletes itself ttlSecondsAfterFinished after it finished", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](60) })
		Eventually(activeCount(job), wait, poll).Should(Equal(1))
		exitPod(podsOf(job)[0], 0)
		Eventually(conditionReason(job, batchv1alpha1.JobComplete), wait, poll).ShouldNot(BeEmpty())
		Consistently(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.Job{}) }, time.Second, poll).Should(Succeed())
		fakeClock.Step(61 * time.Second)
		tickJob(job)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.Job{}))
		}, wait, poll).Should(BeTrue())
	})

	It("releases its pods when the Job is deleted, so they go with it", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) { j.Spec.Parallelism = ptr.To[int32](2) })
		Eventually(activeCount(job), wait, poll).Should(Equal(2))
		Expect(k8sClient.Delete(ctx, getJob(job), client.PropagationPolicy(metav1.DeletePropagationForeground))).To(Succeed())
		Eventually(func() int {
			list := &corev1alpha1.PodList{}
			Expect(k8sClient.List(ctx, list, client.InNamespace(ns))).To(Succeed())
			return len(list.Items)
		}, 60*time.Second, poll).Should(BeZero())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.Job{}))
		}, 60*time.Second, poll).Should(BeTrue())
	})
})

// nodeFinalizer is the finalizer skiff-agent holds a pod with until it
// has stopped its containers.
const nodeFinalizer = "core.skiff.dev/agent"

// setNodeFinalizer adds or removes the node's finalizer, as an agent does.
func setNodeFinalizer(pod *corev1alpha1.Pod, hold bool) {
	GinkgoHelper()
	Eventually(func() error {
		p := &corev1alpha1.Pod{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(pod), p); err != nil {
			return client.IgnoreNotFound(err)
		}
		patch := client.MergeFromWithOptions(p.DeepCopy(), client.MergeFromWithOptimisticLock{})
		p.Finalizers = slices.DeleteFunc(p.Finalizers, func(f string) bool { return f == nodeFinalizer })
		if hold {
			p.Finalizers = append(p.Finalizers, nodeFinalizer)
		}
		return k8sClient.Patch(ctx, p, patch)
	}, wait, poll).Should(Succeed())
}

// activeTerminating lists the Job's pods that are being deleted but have
// not ended: what a node would still be stopping.
func activeTerminating(job *batchv1alpha1.Job) []*corev1alpha1.Pod {
	list := &corev1alpha1.PodList{}
	Expect(k8sClient.List(ctx, list, client.InNamespace(job.Namespace), client.MatchingLabels{LabelJobName: job.Name})).To(Succeed())
	var out []*corev1alpha1.Pod
	for i := range list.Items {
		p := &list.Items[i]
		if !p.DeletionTimestamp.IsZero() && p.Status.Phase != corev1.PodFailed && p.Status.Phase != corev1.PodSucceeded {
			out = append(out, p)
		}
	}
	return out
}

var _ = Describe("Job defaulting at admission", func() {
	// admit sends a Job through the API server (dry run) and returns what
	// it would store.
	admit := func(mutate func(*batchv1alpha1.Job)) *batchv1alpha1.Job {
		GinkgoHelper()
		job := &batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: "default"}}
		job.Spec.Template.Spec = corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "busybox"}}}
		mutate(job)
		Expect(k8sClient.Create(ctx, job, client.DryRunAll)).To(Succeed())
		return job
	}
	indexed := func(perIndex *int32, limit *int32) func(*batchv1alpha1.Job) {
		return func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.BackoffLimitPerIndex, j.Spec.BackoffLimit = ptr.To[int32](3), perIndex, limit
		}
	}

	It("defaults backoffLimit to 6 without backoffLimitPerIndex", func() {
		job := admit(func(*batchv1alpha1.Job) {})
		Expect(job.Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(6)))
		Expect(job.Spec.Completions).To(HaveValue(BeEquivalentTo(1)))
		Expect(job.Spec.Parallelism).To(HaveValue(BeEquivalentTo(1)))
		Expect(job.Spec.PodReplacementPolicy).To(HaveValue(Equal(batchv1.TerminatingOrFailed)))
	})

	It("defaults backoffLimit to MaxInt32 with backoffLimitPerIndex", func() {
		job := admit(indexed(ptr.To[int32](2), nil))
		Expect(job.Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(int32(2147483647))))
	})

	It("keeps an explicit backoffLimit, 6 included, next to backoffLimitPerIndex", func() {
		Expect(admit(indexed(ptr.To[int32](2), ptr.To[int32](6))).Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(6)))
		Expect(admit(indexed(ptr.To[int32](2), ptr.To[int32](3))).Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(3)))
		Expect(admit(func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](0) }).Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(0)))
	})

	It("stores an explicit backoffLimit, and defaults it again when an update drops it", func() {
		ns := newNamespace()
		job := newJob(ns, func(j *batchv1alpha1.Job) {
			j.Spec.Suspend = ptr.To(true)
			indexed(ptr.To[int32](1), ptr.To[int32](6))(j)
		})
		Expect(getJob(job).Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(6)))
		Eventually(func() error {
			got := getJob(job)
			got.Spec.BackoffLimit = nil
			return k8sClient.Update(ctx, got)
		}, wait, poll).Should(Succeed())
		Expect(getJob(job).Spec.BackoffLimit).To(HaveValue(BeEquivalentTo(int32(2147483647))))
	})
})
