package batch

import (
	"fmt"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
)

func newCronJob(ns, schedule string) *batchv1alpha1.CronJob {
	cj := &batchv1alpha1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "cj", Namespace: ns}}
	cj.Spec.Schedule = schedule
	cj.Spec.JobTemplate.Labels = map[string]string{"from": "cronjob"}
	cj.Spec.JobTemplate.Spec.Template.Spec = corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		Containers:    []corev1.Container{{Name: "c", Image: "busybox"}},
	}
	return cj
}

func dryRunCronJob(schedule string) error {
	cj := newCronJob("default", schedule)
	cj.Name = "probe-" + rand.String(5)
	return k8sClient.Create(ctx, cj, client.DryRunAll)
}

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cron-" + rand.String(6)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// tick wakes the reconciler after the test moved the fake clock: the
// controller sleeps in real time until the next schedule time otherwise.
func tick(cj *batchv1alpha1.CronJob) {
	GinkgoHelper()
	patch := client.MergeFrom(cj.DeepCopy())
	if cj.Annotations == nil {
		cj.Annotations = map[string]string{}
	}
	cj.Annotations["test/tick"] = strconv.FormatInt(time.Now().UnixNano(), 10)
	Expect(k8sClient.Patch(ctx, cj, patch)).To(Succeed())
}

// stepTo sets the fake clock to the given offset past the next full hour
// after the CronJob's creation, and wakes the controller.
func stepTo(cj *batchv1alpha1.CronJob, hours int, extra time.Duration) time.Time {
	GinkgoHelper()
	base := cj.CreationTimestamp.Time.Truncate(time.Hour).Add(time.Hour)
	at := base.Add(time.Duration(hours-1) * time.Hour).Add(extra)
	fakeClock.SetTime(at)
	tick(cj)
	return at.Truncate(time.Hour)
}

func jobsOf(cj *batchv1alpha1.CronJob) func() []string {
	return func() []string {
		list := &batchv1alpha1.JobList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(cj.Namespace))).To(Succeed())
		var names []string
		for _, j := range list.Items {
			if metav1.IsControlledBy(&j, cj) && j.DeletionTimestamp.IsZero() {
				names = append(names, j.Name)
			}
		}
		return names
	}
}

func finishJob(ns, name string, condition string) {
	GinkgoHelper()
	// The Job controller updates the same status: retry on conflicts.
	Eventually(func() error {
		job := &batchv1alpha1.Job{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, job); err != nil {
			return err
		}
		now := metav1.Now()
		meta.SetStatusCondition(&job.Status.Conditions, metav1.Condition{Type: condition, Status: metav1.ConditionTrue, Reason: "Test", Message: "set by the test"})
		if condition == batchv1alpha1.JobComplete {
			job.Status.CompletionTime = &now
			job.Status.StartTime = &now
		}
		return k8sClient.Status().Update(ctx, job)
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
}

func eventReasons(cj *batchv1alpha1.CronJob) func() []string {
	return func() []string {
		list := &eventsv1.EventList{}
		Expect(k8sClient.List(ctx, list, client.InNamespace(cj.Namespace))).To(Succeed())
		var reasons []string
		for _, e := range list.Items {
			if e.Regarding.Name == cj.Name {
				reasons = append(reasons, e.Reason+": "+e.Note)
			}
		}
		return reasons
	}
}

var _ = Describe("CronJob admission", func() {
	It("refuses a schedule that does not parse, naming the field and the reason", func() {
		err := dryRunCronJob("*/5 * * *")
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("spec.schedule"))
		Expect(err.Error()).To(ContainSubstring("expected exactly 5 fields"))
	})

	It("refuses an unknown time zone", func() {
		cj := newCronJob("default", "@daily")
		cj.Spec.TimeZone = ptr.To("Atlantis/Capital")
		err := k8sClient.Create(ctx, cj, client.DryRunAll)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("spec.timeZone"))
	})

	It("refuses an invalid schedule on update too", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "@hourly")
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		patch := client.MergeFrom(cj.DeepCopy())
		cj.Spec.Schedule = "every hour"
		err := k8sClient.Patch(ctx, cj, patch)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	})
})

var _ = Describe("CronJob controller", func() {
	// Each case starts at the real time, as its CronJob's creation timestamp does.
	BeforeEach(func() { fakeClock.SetTime(time.Now()) })

	It("creates the Job of a schedule time once, with a deterministic name", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		Consistently(jobsOf(cj), 1*time.Second, 200*time.Millisecond).Should(BeEmpty(), "no Job before the first schedule time")

		scheduled := stepTo(cj, 1, 30*time.Second)
		want := fmt.Sprintf("cj-%d", scheduled.Unix()/60)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ConsistOf(want))
		job := &batchv1alpha1.Job{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: want}, job)).To(Succeed())
		Expect(job.Labels).To(HaveKeyWithValue("from", "cronjob"))
		Expect(job.Annotations).To(HaveKeyWithValue(AnnotationScheduledTimestamp, scheduled.UTC().Format(time.RFC3339)))

		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cj), cj)).To(Succeed())
			g.Expect(cj.Status.LastScheduleTime).NotTo(BeNil())
			g.Expect(cj.Status.LastScheduleTime.Time.Equal(scheduled)).To(BeTrue())
			g.Expect(cj.Status.Active).To(HaveLen(1))
			g.Expect(meta.IsStatusConditionTrue(cj.Status.Conditions, conditions.Ready)).To(BeTrue())
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())

		// More reconciles in the same hour create nothing more.
		tick(cj)
		Consistently(jobsOf(cj), 1*time.Second, 200*time.Millisecond).Should(HaveLen(1))

		// Completion shows in lastSuccessfulTime and empties active.
		finishJob(ns, want, batchv1alpha1.JobComplete)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cj), cj)).To(Succeed())
			g.Expect(cj.Status.Active).To(BeEmpty())
			g.Expect(cj.Status.LastSuccessfulTime).NotTo(BeNil())
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
		Eventually(eventReasons(cj), 10*time.Second, 100*time.Millisecond).Should(ContainElement(ContainSubstring("SawCompletedJob: Saw completed job: " + want + ", condition: Complete")))
	})

	It("writes a Job's schedule time in the CronJob's time zone", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "30 * * * *")
		cj.Spec.TimeZone = ptr.To("Asia/Kolkata") // +05:30: the half hour is a full hour there
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		scheduled := stepTo(cj, 1, time.Minute)
		loc, err := time.LoadLocation("Asia/Kolkata")
		Expect(err).NotTo(HaveOccurred())
		name := fmt.Sprintf("cj-%d", scheduled.Unix()/60)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ConsistOf(name))
		job := &batchv1alpha1.Job{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, job)).To(Succeed())
		Expect(job.Annotations).To(HaveKeyWithValue(AnnotationScheduledTimestamp, scheduled.In(loc).Format(time.RFC3339)))
		Expect(job.Annotations[AnnotationScheduledTimestamp]).To(HaveSuffix("+05:30"))
	})

	It("after downtime runs only the most recent missed schedule and says what it skipped", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		scheduled := stepTo(cj, 4, 10*time.Minute)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ConsistOf(fmt.Sprintf("cj-%d", scheduled.Unix()/60)))
		Eventually(eventReasons(cj), 10*time.Second, 100*time.Millisecond).Should(ContainElement(ContainSubstring("MissedSchedule: Skipped 3 schedule times")))
	})

	It("skips a schedule time past startingDeadlineSeconds", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		cj.Spec.StartingDeadlineSeconds = ptr.To[int64](60)
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		missed := stepTo(cj, 1, 5*time.Minute)
		Eventually(eventReasons(cj), 10*time.Second, 100*time.Millisecond).Should(ContainElement(ContainSubstring("more than startingDeadlineSeconds")))
		Consistently(jobsOf(cj), time.Second, 200*time.Millisecond).Should(BeEmpty())
		Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cj), cj)).To(Succeed())
		Expect(cj.Status.LastScheduleTime).To(BeNil(), "lastScheduleTime is when a Job last started, as upstream: a missed time is not one")

		// The next schedule time, in time, runs, and the miss before it is named.
		next := stepTo(cj, 2, 10*time.Second)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ConsistOf(fmt.Sprintf("cj-%d", next.Unix()/60)))
		Eventually(eventReasons(cj), 10*time.Second, 100*time.Millisecond).Should(ContainElement(
			ContainSubstring("Skipped 1 schedule times from " + missed.UTC().Format(time.RFC3339) + " on, running only the most recent")))
	})

	It("with concurrencyPolicy Forbid waits for the running Job", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		cj.Spec.ConcurrencyPolicy = "Forbid"
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		first := stepTo(cj, 1, time.Minute)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(HaveLen(1))
		stepTo(cj, 2, time.Minute)
		Eventually(eventReasons(cj), 10*time.Second, 100*time.Millisecond).Should(ContainElement(ContainSubstring("JobAlreadyActive")))
		Expect(jobsOf(cj)()).To(HaveLen(1))

		finishJob(ns, fmt.Sprintf("cj-%d", first.Unix()/60), batchv1alpha1.JobComplete)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(HaveLen(2), "the waiting schedule runs once the first Job finished")
	})

	It("drops an active Job someone deleted with a MissingJob event, and Forbid no longer waits for it", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		cj.Spec.ConcurrencyPolicy = "Forbid"
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		first := stepTo(cj, 1, time.Minute)
		name := fmt.Sprintf("cj-%d", first.Unix()/60)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cj), cj)).To(Succeed())
			g.Expect(cj.Status.Active).To(ConsistOf(HaveField("Name", name)))
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())

		Expect(k8sClient.Delete(ctx, &batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(Succeed())
		Eventually(eventReasons(cj), 10*time.Second, 100*time.Millisecond).Should(ContainElement("MissingJob: Active job went missing: " + name))
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cj), cj)).To(Succeed())
			g.Expect(cj.Status.Active).To(BeEmpty())
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())

		second := stepTo(cj, 2, time.Minute)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ConsistOf(fmt.Sprintf("cj-%d", second.Unix()/60)))
	})

	It("with concurrencyPolicy Replace replaces the running Job", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		cj.Spec.ConcurrencyPolicy = "Replace"
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		first := stepTo(cj, 1, time.Minute)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ConsistOf(fmt.Sprintf("cj-%d", first.Unix()/60)))
		second := stepTo(cj, 2, time.Minute)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ConsistOf(fmt.Sprintf("cj-%d", second.Unix()/60)))
	})

	It("keeps no more finished Jobs than the history limits", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		cj.Spec.SuccessfulJobsHistoryLimit = ptr.To[int32](1)
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		var names []string
		for h := 1; h <= 3; h++ {
			at := stepTo(cj, h, time.Minute)
			name := fmt.Sprintf("cj-%d", at.Unix()/60)
			Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ContainElement(name))
			finishJob(ns, name, batchv1alpha1.JobComplete)
			names = append(names, name)
		}
		tick(cj)
		Eventually(jobsOf(cj), 10*time.Second, 100*time.Millisecond).Should(ConsistOf(names[2]))
	})

	It("creates nothing while suspended", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		cj.Spec.Suspend = ptr.To(true)
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		stepTo(cj, 2, time.Minute)
		Consistently(jobsOf(cj), 2*time.Second, 200*time.Millisecond).Should(BeEmpty())
	})

	It("never creates a schedule time's Job twice, even when it already exists", func() {
		ns := newNamespace()
		cj := newCronJob(ns, "0 * * * *")
		// Replace is the hard case: the Job exists and runs, and status does
		// not know it yet (a stale read after a create), so it must not be
		// taken for the previous run and replaced.
		cj.Spec.ConcurrencyPolicy = "Replace"
		Expect(k8sClient.Create(ctx, cj)).To(Succeed())
		// What a controller that crashed after creating the Job leaves behind.
		at := cj.CreationTimestamp.Time.Truncate(time.Hour).Add(time.Hour)
		existing := jobFromTemplate(cj, at)
		existing.OwnerReferences = []metav1.OwnerReference{{APIVersion: batchv1alpha1.GroupVersion.String(), Kind: "CronJob",
			Name: cj.Name, UID: cj.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
		Expect(k8sClient.Create(ctx, existing)).To(Succeed())
		stepTo(cj, 1, time.Minute)
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(cj), cj)).To(Succeed())
			g.Expect(cj.Status.LastScheduleTime).NotTo(BeNil())
		}, 10*time.Second, 100*time.Millisecond).Should(Succeed())
		Expect(jobsOf(cj)()).To(ConsistOf(existing.Name))
		tick(cj)
		Consistently(func(g Gomega) {
			job := &batchv1alpha1.Job{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(existing), job)).To(Succeed())
			g.Expect(job.UID).To(Equal(existing.UID), "the same Job, never deleted and created again")
			g.Expect(job.DeletionTimestamp).To(BeNil())
		}, time.Second, 100*time.Millisecond).Should(Succeed())
	})
})
