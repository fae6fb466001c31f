package workloads_test

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri/fake"
	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/batch"
	"github.com/skiff-dev/skiff/internal/podutil"
	"github.com/skiff-dev/skiff/test/utils"
)

// newJob creates a Job whose pods exit with exitCode after runSeconds on
// their simulated node.
func newJob(ns string, exitCode int, runSeconds float64, mutate ...func(*batchv1alpha1.Job)) *batchv1alpha1.Job {
	GinkgoHelper()
	job := &batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "job"}}
	job.Spec.BackoffLimit = ptr.To[int32](6)
	job.Spec.Template = corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
			fake.AnnotationExitCode:   strconv.Itoa(exitCode),
			fake.AnnotationRunSeconds: strconv.FormatFloat(runSeconds, 'f', -1, 64),
		}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "work:1"}}},
	}
	for _, m := range mutate {
		m(job)
	}
	Expect(k8sClient.Create(ctx, job)).To(Succeed())
	return job
}

// tickJob wakes the Job controller after the test moved its clock: a
// requeue it asked for waits in real time.
func tickJob(job *batchv1alpha1.Job) {
	GinkgoHelper()
	Eventually(func() error {
		j := &batchv1alpha1.Job{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(job), j); err != nil {
			return err
		}
		patch := client.MergeFrom(j.DeepCopy())
		if j.Annotations == nil {
			j.Annotations = map[string]string{}
		}
		j.Annotations["test/tick"] = strconv.FormatInt(time.Now().UnixNano(), 10)
		return k8sClient.Patch(ctx, j, patch)
	}).Should(Succeed())
}

// stepAndTick moves the Job clock ahead and wakes the Job: for use inside
// Eventually, so every back-off, however long, is skipped.
func stepAndTick(job *batchv1alpha1.Job, d time.Duration) {
	jobClock.Step(d)
	tickJob(job)
}

func jobCondition(job *batchv1alpha1.Job, typ string) func() string {
	return func() string {
		c := meta.FindStatusCondition(get(job).Status.Conditions, typ)
		if c == nil || c.Status != metav1.ConditionTrue {
			return ""
		}
		return c.Reason
	}
}

// jobWatch follows the pods of a Job: every pod it ever had, the most
// active at once, and an optional action on each change.
type jobWatch struct {
	*utils.PodWatch
	mu        sync.Mutex
	maxActive int
}

func watchJob(ns string, onChange func(all map[types.UID]*corev1alpha1.Pod)) *jobWatch {
	GinkgoHelper()
	jw := &jobWatch{}
	w, err := utils.WatchPods(ctx, k8sClient, ns, func(all map[types.UID]*corev1alpha1.Pod) {
		active := 0
		for _, p := range all {
			if podutil.IsActive(p) {
				active++
			}
		}
		jw.mu.Lock()
		jw.maxActive = max(jw.maxActive, active)
		jw.mu.Unlock()
		if onChange != nil {
			onChange(all)
		}
	})
	Expect(err).NotTo(HaveOccurred())
	jw.PodWatch = w
	return jw
}

// expectAllReleased waits until no pod of ns holds the Job tracking
// finalizer: every outcome is counted and let go.
func expectAllReleased(ns string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		for _, p := range pods(ns) {
			g.Expect(p.Finalizers).NotTo(ContainElement(batchv1alpha1.JobTrackingFinalizer), p.Name)
		}
	}).Should(Succeed())
}

var _ = Describe("Job on simulated nodes", func() {
	// Back-off compares the clock with pods' finish times: start each spec at the real time.
	BeforeEach(func() { jobClock.Reset() })

	It("runs completions with never more than parallelism pods, counts each once and completes", func() {
		ns := newNamespace("job")
		w := watchJob(ns, nil)
		job := newJob(ns, 0, 0.3, func(j *batchv1alpha1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](5), ptr.To[int32](2)
		})
		Eventually(jobCondition(job, batchv1alpha1.JobComplete)).Should(Equal(batchv1alpha1.ReasonCompletionsReached))
		expectAllReleased(ns)
		stopWatch(w.PodWatch)
		Expect(w.maxActive).To(BeNumerically("<=", 2))
		Expect(w.Seen()).To(HaveLen(5), "one pod per completion, none lost nor repeated")
		job = get(job)
		Expect(job.Status).To(And(HaveField("Succeeded", int32(5)), HaveField("Failed", int32(0)), HaveField("Active", int32(0))))
		Expect(job.Status.StartTime).NotTo(BeNil())
		Expect(job.Status.CompletionTime).NotTo(BeNil())
		expectScheduledOnSimulatedNodes(ns, sharedNodes...)
	})

	It("stops at backoffLimit with BackoffLimitExceeded, waiting out the back-off between pods", func() {
		ns := newNamespace("job-backoff")
		job := newJob(ns, 1, 0.2, func(j *batchv1alpha1.Job) { j.Spec.BackoffLimit = ptr.To[int32](1) })
		Eventually(func() int32 { return get(job).Status.Failed }).Should(BeEquivalentTo(1))
		Consistently(func() int { return len(activePods(ns)) }).Should(BeZero(), "the replacement waits for the back-off")
		Eventually(func() string {
			stepAndTick(job, 5*time.Second)
			return jobCondition(job, batchv1alpha1.JobFailed)()
		}).Should(Equal(batchv1alpha1.ReasonBackoffLimitExceeded))
		Expect(get(job).Status).To(And(HaveField("Failed", int32(2)), HaveField("Succeeded", int32(0))))
		Expect(pods(ns)).To(HaveLen(2))
		expectAllReleased(ns)
	})

	It("fails at once on an exit code that a FailJob rule names, stopping the other pods", func() {
		ns := newNamespace("job-pfp")
		job := newJob(ns, 42, 0.3, func(j *batchv1alpha1.Job) {
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](4), ptr.To[int32](2)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionFailJob,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
			}}}
		})
		Eventually(jobCondition(job, batchv1alpha1.JobFailed)).Should(Equal(batchv1alpha1.ReasonPodFailurePolicy))
		Expect(jobCondition(job, batchv1alpha1.JobFailureTarget)()).To(Equal(batchv1alpha1.ReasonPodFailurePolicy))
		Expect(activePods(ns)).To(BeEmpty())
		Expect(len(pods(ns))).To(BeNumerically("<=", 2), "no pod was started after the failure")
		expectAllReleased(ns)
	})

	It("fails an index at once on an exit code that a FailIndex rule names, and counts Count failures towards backoffLimit", func() {
		ns := newNamespace("job-failindex")
		job := newJob(ns, 5, 0.2, func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](2), ptr.To[int32](2)
			j.Spec.BackoffLimitPerIndex = ptr.To[int32](3)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionFailIndex,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{5}},
			}}}
		})
		Eventually(jobCondition(job, batchv1alpha1.JobFailed)).Should(Equal("FailedIndexes"))
		Expect(get(job).Status).To(And(HaveField("FailedIndexes", HaveValue(Equal("0,1"))), HaveField("Failed", int32(2))))
		Expect(pods(ns)).To(HaveLen(2), "no retry of a failed index")

		ns = newNamespace("job-count")
		job = newJob(ns, 1, 0.2, func(j *batchv1alpha1.Job) {
			j.Spec.BackoffLimit = ptr.To[int32](0)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionCount,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{1}},
			}}}
		})
		Eventually(jobCondition(job, batchv1alpha1.JobFailed)).Should(Equal(batchv1alpha1.ReasonBackoffLimitExceeded))
		Expect(get(job).Status.Failed).To(BeEquivalentTo(1))
	})

	It("does not count failures that an Ignore rule names", func() {
		ns := newNamespace("job-ignore")
		job := newJob(ns, 3, 0.2, func(j *batchv1alpha1.Job) {
			j.Spec.BackoffLimit = ptr.To[int32](0)
			j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:      batchv1.PodFailurePolicyActionIgnore,
				OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}},
			}}}
		})
		// Each replacement waits out the back-off, which ignored failures lengthen as upstream's.
		Eventually(func() int {
			stepAndTick(job, 30*time.Second)
			return len(pods(ns))
		}).Should(BeNumerically(">=", 3), "each ignored failure is replaced")
		Expect(get(job).Status.Failed).To(BeZero())
		Expect(jobCondition(job, batchv1alpha1.JobFailed)()).To(BeEmpty())
		Expect(k8sClient.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	})

	It("runs an Indexed Job with one pod per index that knows its index", func() {
		ns := newNamespace("job-indexed")
		job := newJob(ns, 0, 0.3, func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](3)
		})
		Eventually(jobCondition(job, batchv1alpha1.JobComplete)).Should(Equal(batchv1alpha1.ReasonCompletionsReached))
		Expect(get(job).Status).To(And(HaveField("CompletedIndexes", "0-2"), HaveField("Succeeded", int32(3))))
		seen := map[string]bool{}
		for _, p := range pods(ns) {
			idx := p.Annotations[batch.AnnotationCompletionIndex]
			seen[idx] = true
			Expect(p.Spec.Hostname).To(Equal("job-" + idx))
			Expect(p.Spec.Containers[0].Env).To(ContainElement(corev1.EnvVar{Name: batch.EnvCompletionIndex, Value: idx}))
		}
		Expect(seen).To(Equal(map[string]bool{"0": true, "1": true, "2": true}))
	})

	It("fails an index after backoffLimitPerIndex retries and the Job once every index ended", func() {
		ns := newNamespace("job-perindex")
		job := newJob(ns, 1, 0.2, func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](2), ptr.To[int32](2)
			j.Spec.BackoffLimitPerIndex = ptr.To[int32](1)
		})
		Eventually(func() string {
			stepAndTick(job, 30*time.Second)
			return jobCondition(job, batchv1alpha1.JobFailed)()
		}).Should(Equal("FailedIndexes"))
		Expect(get(job).Status).To(And(HaveField("FailedIndexes", HaveValue(Equal("0,1"))), HaveField("Failed", int32(4))))
		Expect(pods(ns)).To(HaveLen(4), "two tries per index")
		for _, p := range pods(ns) {
			Expect(p.Annotations).To(HaveKey(batch.AnnotationIndexFailureCount))
		}
	})

	It("fails with MaxFailedIndexesExceeded once more indexes failed than allowed", func() {
		ns := newNamespace("job-maxfailed")
		job := newJob(ns, 1, 0.2, func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](1)
			j.Spec.BackoffLimitPerIndex, j.Spec.MaxFailedIndexes = ptr.To[int32](0), ptr.To[int32](0)
		})
		Eventually(jobCondition(job, batchv1alpha1.JobFailed)).Should(Equal(batchv1alpha1.ReasonMaxFailedIndexesExceeded))
		Expect(get(job).Status.FailedIndexes).To(HaveValue(Equal("0")))
		Expect(pods(ns)).To(HaveLen(1))
	})

	It("completes on its success policy before every index ran", func() {
		ns := newNamespace("job-success")
		job := newJob(ns, 0, 0.2, func(j *batchv1alpha1.Job) {
			j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](3), ptr.To[int32](1)
			j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0")}}}
		})
		Eventually(jobCondition(job, batchv1alpha1.JobComplete)).Should(Equal(batchv1alpha1.ReasonSuccessPolicy))
		Expect(jobCondition(job, batchv1alpha1.JobSuccessCriteriaMet)()).To(Equal(batchv1alpha1.ReasonSuccessPolicy))
		Expect(get(job).Status.CompletedIndexes).To(Equal("0"))
		Expect(activePods(ns)).To(BeEmpty())
	})

	It("fails with DeadlineExceeded after activeDeadlineSeconds and stops its pods", func() {
		ns := newNamespace("job-deadline")
		job := newJob(ns, 0, 600, func(j *batchv1alpha1.Job) {
			j.Spec.ActiveDeadlineSeconds = ptr.To[int64](30)
			j.Spec.Parallelism = ptr.To[int32](2)
		})
		Eventually(func() int { return len(activePods(ns)) }).Should(Equal(2))
		jobClock.Step(31 * time.Second)
		tickJob(job)
		Eventually(jobCondition(job, batchv1alpha1.JobFailed)).Should(Equal(batchv1alpha1.ReasonDeadlineExceeded))
		Eventually(func() []corev1alpha1.Pod { return pods(ns) }).Should(BeEmpty(), "the pods are stopped and released")
		Expect(get(job).Status.Failed).To(BeEquivalentTo(2))
	})

	It("creates no pods while suspended and runs them once resumed", func() {
		ns := newNamespace("job-suspend")
		job := newJob(ns, 0, 0.2, func(j *batchv1alpha1.Job) { j.Spec.Suspend = ptr.To(true) })
		Eventually(jobCondition(job, batchv1alpha1.JobSuspended)).Should(Equal(batchv1alpha1.ReasonJobSuspended))
		Consistently(func() []corev1alpha1.Pod { return pods(ns) }).Should(BeEmpty())
		update(job, func(j *batchv1alpha1.Job) { j.Spec.Suspend = ptr.To(false) })
		Eventually(jobCondition(job, batchv1alpha1.JobComplete)).ShouldNot(BeEmpty())
		Expect(meta.FindStatusCondition(get(job).Status.Conditions, batchv1alpha1.JobSuspended)).To(HaveField("Reason", batchv1alpha1.ReasonJobResumed))
	})

	It("deletes itself ttlSecondsAfterFinished after it finished, with its pods", func() {
		ns := newNamespace("job-ttl")
		job := newJob(ns, 0, 0.2, func(j *batchv1alpha1.Job) { j.Spec.TTLSecondsAfterFinished = ptr.To[int32](60) })
		Eventually(jobCondition(job, batchv1alpha1.JobComplete)).ShouldNot(BeEmpty())
		Consistently(func() error { return k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.Job{}) }).Should(Succeed())
		jobClock.Step(61 * time.Second)
		tickJob(job)
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(job), &batchv1alpha1.Job{}))
		}).Should(BeTrue())
		Eventually(func() []corev1alpha1.Pod { return pods(ns) }).Should(BeEmpty())
	})

	It("with podReplacementPolicy Failed replaces a deleted pod only once it has stopped", func() {
		ns := newNamespace("job-replace")
		early := ""
		w := watchJob(ns, func(all map[types.UID]*corev1alpha1.Pod) {
			stopping, active := 0, 0
			for _, p := range all {
				switch {
				case p.DeletionTimestamp != nil && !podutil.IsTerminal(p):
					stopping++
				case podutil.IsActive(p):
					active++
				}
			}
			if stopping > 0 && active > 0 && early == "" {
				early = fmt.Sprintf("%d pods active while %d are still stopping", active, stopping)
			}
		})
		job := newJob(ns, 0, 600, func(j *batchv1alpha1.Job) {
			j.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
		})
		Eventually(func() []corev1alpha1.Pod { return activePods(ns) }).Should(HaveLen(1))
		first := activePods(ns)[0]
		Expect(k8sClient.Delete(ctx, &first)).To(Succeed())
		Eventually(func() int32 { return get(job).Status.Failed }).Should(BeEquivalentTo(1))
		Eventually(func() int {
			stepAndTick(job, 30*time.Second)
			return len(activePods(ns))
		}).Should(Equal(1))
		stopWatch(w.PodWatch)
		Expect(early).To(BeEmpty())
		Expect(k8sClient.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
	})

	Context("pod deletion races", func() {
		It("counts pods deleted the moment they succeed once each, as successes", func() {
			ns := newNamespace("job-race-done")
			var mu sync.Mutex
			deleting := map[types.UID]bool{}
			w := watchJob(ns, func(all map[types.UID]*corev1alpha1.Pod) {
				for uid, p := range all {
					if p.Status.Phase != corev1.PodSucceeded || p.DeletionTimestamp != nil {
						continue
					}
					mu.Lock()
					first := !deleting[uid]
					deleting[uid] = true
					mu.Unlock()
					if first {
						go func(p *corev1alpha1.Pod) { _ = k8sClient.Delete(ctx, p) }(p.DeepCopy())
					}
				}
			})
			job := newJob(ns, 0, 0.2, func(j *batchv1alpha1.Job) {
				j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](6), ptr.To[int32](3)
			})
			Eventually(jobCondition(job, batchv1alpha1.JobComplete)).Should(Equal(batchv1alpha1.ReasonCompletionsReached))
			Eventually(func() []corev1alpha1.Pod { return pods(ns) }).Should(BeEmpty(), "every deleted pod is released once counted")
			stopWatch(w.PodWatch)
			Expect(get(job).Status).To(And(HaveField("Succeeded", int32(6)), HaveField("Failed", int32(0))))
			Expect(w.Seen()).To(HaveLen(6))
			mu.Lock()
			Expect(deleting).To(HaveLen(6), "the test deleted every pod as it succeeded")
			mu.Unlock()
		})

		It("counts pods deleted while they run once each, as failures, and replaces them", func() {
			ns := newNamespace("job-race-running")
			job := newJob(ns, 0, 3, func(j *batchv1alpha1.Job) {
				j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](2), ptr.To[int32](2)
			})
			Eventually(func(g Gomega) {
				running := 0
				for _, p := range activePods(ns) {
					if podutil.IsReady(&p) {
						running++
					}
				}
				g.Expect(running).To(Equal(2))
			}).Should(Succeed())
			victims := activePods(ns)
			for i := range victims {
				Expect(k8sClient.Delete(ctx, &victims[i])).To(Succeed())
			}
			Eventually(func() string {
				stepAndTick(job, 30*time.Second)
				return jobCondition(job, batchv1alpha1.JobComplete)()
			}).Should(Equal(batchv1alpha1.ReasonCompletionsReached))
			Expect(get(job).Status).To(And(HaveField("Succeeded", int32(2)), HaveField("Failed", int32(2))))
			expectAllReleased(ns)
		})
	})

	Context("manager restarts", func() {
		It("resumes counting after restarts mid-run: no pod lost, none counted twice, none extra", func() {
			ns := newNamespace("job-restart")
			w := watchJob(ns, nil)
			job := newJob(ns, 0, 0.5, func(j *batchv1alpha1.Job) {
				j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](6), ptr.To[int32](2)
			})
			Eventually(func() int32 { return get(job).Status.Succeeded }).Should(BeNumerically(">=", 1))
			restartManager()
			Eventually(func() int32 { return get(job).Status.Succeeded }).Should(BeNumerically(">=", 3))
			restartManager()
			Eventually(jobCondition(job, batchv1alpha1.JobComplete)).Should(Equal(batchv1alpha1.ReasonCompletionsReached))
			expectAllReleased(ns)
			stopWatch(w.PodWatch)
			Expect(get(job).Status).To(And(HaveField("Succeeded", int32(6)), HaveField("Failed", int32(0))))
			Expect(w.Seen()).To(HaveLen(6))
			Expect(w.maxActive).To(BeNumerically("<=", 2))
		})

		It("keeps a Job's back-off across a restart: after two failures the next pod still waits 20 s", func() {
			ns := newNamespace("job-backoff-restart")
			job := newJob(ns, 1, 0.2)
			Eventually(func() int32 { return get(job).Status.Failed }).Should(BeEquivalentTo(1))
			stepAndTick(job, 10*time.Second) // the first failure's 10 s are over
			Eventually(func() int32 { return get(job).Status.Failed }).Should(BeEquivalentTo(2))
			restartManager()
			// The new manager rebuilds the record from status (two failures, no
			// success) and the failed pods: 20 s after the second failure, of
			// which the clock has run about 10.
			Consistently(func() []corev1alpha1.Pod { return pods(ns) }).Should(HaveLen(2), "no third pod within the back-off")
			Eventually(func() int {
				stepAndTick(job, 5*time.Second)
				return len(pods(ns))
			}).Should(BeNumerically(">=", 3))
			Expect(k8sClient.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground))).To(Succeed())
		})

		It("counts pods that finished and were deleted while the manager was down", func() {
			ns := newNamespace("job-down")
			job := newJob(ns, 0, 1, func(j *batchv1alpha1.Job) {
				j.Spec.Completions, j.Spec.Parallelism = ptr.To[int32](2), ptr.To[int32](2)
			})
			// Bound and running: the scheduler stops with the manager.
			Eventually(func(g Gomega) {
				ps := pods(ns)
				g.Expect(ps).To(HaveLen(2))
				for _, p := range ps {
					g.Expect(p.Status.Phase).To(Or(Equal(corev1.PodRunning), Equal(corev1.PodSucceeded)))
				}
			}).Should(Succeed())
			Expect(mgr.Stop()).To(Succeed())
			restarted := false
			DeferCleanup(func() {
				if !restarted {
					Expect(mgr.Start(ctx)).To(Succeed())
				}
			})
			Eventually(func(g Gomega) {
				ps := pods(ns)
				g.Expect(ps).To(HaveLen(2))
				for _, p := range ps {
					g.Expect(p.Status.Phase).To(Equal(corev1.PodSucceeded))
				}
			}).Should(Succeed())
			for _, p := range pods(ns) {
				Expect(k8sClient.Delete(ctx, &p)).To(Succeed())
			}
			Consistently(func() []corev1alpha1.Pod { return pods(ns) }).Should(HaveLen(2), "the tracking finalizer holds them until counted")
			Expect(mgr.Start(ctx)).To(Succeed())
			restarted = true
			Eventually(jobCondition(job, batchv1alpha1.JobComplete)).Should(Equal(batchv1alpha1.ReasonCompletionsReached))
			Eventually(func() []corev1alpha1.Pod { return pods(ns) }).Should(BeEmpty())
			Expect(get(job).Status).To(And(HaveField("Succeeded", int32(2)), HaveField("Failed", int32(0))))
		})
	})
})
