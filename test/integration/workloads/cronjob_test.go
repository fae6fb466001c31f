package workloads_test

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri/fake"
	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
)

// newCronJob creates a CronJob whose Jobs' pods succeed at once. Its
// schedule fires at the start of each month, so real time never reaches a
// schedule time during a spec: only the test's clock steps do.
func newCronJob(ns string, mutate ...func(*batchv1alpha1.CronJob)) *batchv1alpha1.CronJob {
	GinkgoHelper()
	cj := &batchv1alpha1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cj"}}
	cj.Spec.Schedule = "0 0 1 * *"
	cj.Spec.JobTemplate.Spec.Template = corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{fake.AnnotationExitCode: "0", fake.AnnotationRunSeconds: "0.2"}},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "main", Image: "work:1"}}},
	}
	for _, m := range mutate {
		m(cj)
	}
	Expect(k8sClient.Create(ctx, cj)).To(Succeed())
	// A CronJob left behind would fire whenever a later spec moves the clock.
	DeferCleanup(func() { _ = client.IgnoreNotFound(k8sClient.Delete(ctx, cj)) })
	return cj
}

// tickCronJob wakes the CronJob controller after the clock moved.
func tickCronJob(cj *batchv1alpha1.CronJob) {
	GinkgoHelper()
	Eventually(func() error {
		c := &batchv1alpha1.CronJob{}
		if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cj), c); err != nil {
			return err
		}
		patch := client.MergeFrom(c.DeepCopy())
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations["test/tick"] = strconv.FormatInt(time.Now().UnixNano(), 10)
		return k8sClient.Patch(ctx, c, patch)
	}).Should(Succeed())
}

// jobCreations watches the Jobs of ns and counts the creations of each name.
type jobCreations struct {
	mu    sync.Mutex
	count map[string]int
	w     watch.Interface
	done  chan struct{}
}

func watchJobCreations(ns string) *jobCreations {
	GinkgoHelper()
	var list batchv1alpha1.JobList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
	Expect(list.Items).To(BeEmpty())
	w, err := k8sClient.Watch(ctx, &batchv1alpha1.JobList{}, client.InNamespace(ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	Expect(err).NotTo(HaveOccurred())
	jc := &jobCreations{count: map[string]int{}, w: w, done: make(chan struct{})}
	go func() {
		defer close(jc.done)
		for ev := range w.ResultChan() {
			if job, ok := ev.Object.(*batchv1alpha1.Job); ok && ev.Type == watch.Added {
				jc.mu.Lock()
				jc.count[job.Name]++
				jc.mu.Unlock()
			}
		}
	}()
	return jc
}

func (jc *jobCreations) get() map[string]int {
	jc.mu.Lock()
	defer jc.mu.Unlock()
	out := map[string]int{}
	for k, v := range jc.count {
		out[k] = v
	}
	return out
}

func (jc *jobCreations) stop() map[string]int {
	jc.w.Stop()
	<-jc.done
	return jc.get()
}

// scheduleAfter is the n-th start of a month (UTC) after t, and the name
// of its Job.
func scheduleAfter(t time.Time, n int) (time.Time, string) {
	t = t.UTC()
	at := time.Date(t.Year(), t.Month()+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	return at, fmt.Sprintf("cj-%d", at.Unix()/60)
}

func cronEvents(cj *batchv1alpha1.CronJob) []string {
	GinkgoHelper()
	var list eventsv1.EventList
	Expect(k8sClient.List(ctx, &list, client.InNamespace(cj.Namespace))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == cj.Name && e.Regarding.Kind == "CronJob" {
			out = append(out, e.Reason+": "+e.Note)
		}
	}
	return out
}

var _ = Describe("CronJob on simulated nodes", func() {
	BeforeEach(func() { jobClock.Reset() })

	It("creates a schedule time's Job once across manager restarts, runs it to completion and prunes it", func() {
		ns := newNamespace("cron")
		jobs := watchJobCreations(ns)
		cj := newCronJob(ns, func(cj *batchv1alpha1.CronJob) { cj.Spec.SuccessfulJobsHistoryLimit = ptr.To[int32](0) })
		at, name := scheduleAfter(get(cj).CreationTimestamp.Time, 1)
		jobClock.SetNow(at.Add(10 * time.Second))
		tickCronJob(cj)
		Eventually(jobs.get).Should(HaveKey(name))
		restartManager()
		tickCronJob(cj)

		By("the Job runs on the simulated nodes and is pruned once complete (history limit 0)")
		Eventually(func(g Gomega) {
			c := get(cj)
			g.Expect(c.Status.LastSuccessfulTime).NotTo(BeNil())
			g.Expect(c.Status.LastScheduleTime).To(HaveValue(HaveField("Time", BeTemporally("==", at))))
			g.Expect(c.Status.Active).To(BeEmpty())
			var list batchv1alpha1.JobList
			g.Expect(k8sClient.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(BeEmpty())
		}).Should(Succeed())

		By("a restarted manager does not run the pruned schedule time again")
		restartManager()
		tickCronJob(cj)
		Consistently(jobs.get, "2s").Should(Equal(map[string]int{name: 1}))
		Expect(jobs.stop()).To(Equal(map[string]int{name: 1}))
	})

	It("after the manager was down for months, runs only the most recent schedule time and says what it skipped", func() {
		ns := newNamespace("cron-down")
		jobs := watchJobCreations(ns)
		cj := newCronJob(ns)
		created := get(cj).CreationTimestamp.Time
		Expect(mgr.Stop()).To(Succeed())
		started := false
		DeferCleanup(func() {
			if !started {
				Expect(mgr.Start(ctx)).To(Succeed())
			}
		})
		at, name := scheduleAfter(created, 3)
		jobClock.SetNow(at.Add(20 * time.Minute))
		Expect(mgr.Start(ctx)).To(Succeed())
		started = true
		Eventually(jobs.get).Should(Equal(map[string]int{name: 1}))
		Eventually(func() []string { return cronEvents(cj) }).Should(ContainElement(ContainSubstring("MissedSchedule: Skipped 2 schedule times")))
		Consistently(jobs.get).Should(Equal(map[string]int{name: 1}))
		jobs.stop()
	})

	It("follows its timeZone", func() {
		ns := newNamespace("cron-tz")
		jobs := watchJobCreations(ns)
		cj := newCronJob(ns, func(cj *batchv1alpha1.CronJob) { cj.Spec.TimeZone = ptr.To("Asia/Tokyo") })
		tokyo, err := time.LoadLocation("Asia/Tokyo")
		Expect(err).NotTo(HaveOccurred())
		created := get(cj).CreationTimestamp.Time.In(tokyo)
		at := time.Date(created.Year(), created.Month()+1, 1, 0, 0, 0, 0, tokyo)
		name := fmt.Sprintf("cj-%d", at.Unix()/60)
		jobClock.SetNow(at.Add(-time.Minute))
		tickCronJob(cj)
		Consistently(jobs.get).Should(BeEmpty(), "not before midnight in Tokyo")
		jobClock.SetNow(at.Add(10 * time.Second))
		tickCronJob(cj)
		Eventually(jobs.get).Should(Equal(map[string]int{name: 1}))
		jobs.stop()
	})

	It("skips a schedule time it is too late for by startingDeadlineSeconds, and runs nothing while suspended", func() {
		ns := newNamespace("cron-late")
		jobs := watchJobCreations(ns)
		late := newCronJob(ns, func(cj *batchv1alpha1.CronJob) { cj.Spec.StartingDeadlineSeconds = ptr.To[int64](60) })
		suspended := newCronJob(ns, func(cj *batchv1alpha1.CronJob) { cj.Name = "off"; cj.Spec.Suspend = ptr.To(true) })
		at, _ := scheduleAfter(get(late).CreationTimestamp.Time, 1)
		jobClock.SetNow(at.Add(5 * time.Minute))
		tickCronJob(late)
		tickCronJob(suspended)
		Eventually(func() []string { return cronEvents(late) }).Should(ContainElement(ContainSubstring("more than startingDeadlineSeconds")))
		Consistently(jobs.get).Should(BeEmpty())
		Expect(get(late).Status.LastScheduleTime).To(BeNil(), "a missed time is not a schedule time that ran, as upstream")
		tickCronJob(late)
		Consistently(jobs.get).Should(BeEmpty(), "the missed time is not tried again")

		By("resuming: the most recent schedule time runs")
		update(suspended, func(cj *batchv1alpha1.CronJob) { cj.Spec.Suspend = ptr.To(false) })
		Eventually(jobs.get).Should(Equal(map[string]int{fmt.Sprintf("off-%d", at.Unix()/60): 1}))
		jobs.stop()
	})

	It("with concurrencyPolicy Replace replaces a Job still running, and with Forbid waits for it", func() {
		ns := newNamespace("cron-concurrency")
		jobs := watchJobCreations(ns)
		long := func(cj *batchv1alpha1.CronJob) {
			cj.Spec.JobTemplate.Spec.Template.Annotations[fake.AnnotationRunSeconds] = "600"
		}
		replace := newCronJob(ns, long, func(cj *batchv1alpha1.CronJob) { cj.Name = "replace"; cj.Spec.ConcurrencyPolicy = "Replace" })
		forbid := newCronJob(ns, long, func(cj *batchv1alpha1.CronJob) { cj.Name = "forbid"; cj.Spec.ConcurrencyPolicy = "Forbid" })
		first, _ := scheduleAfter(get(replace).CreationTimestamp.Time, 1)
		second, _ := scheduleAfter(get(replace).CreationTimestamp.Time, 2)
		r1, r2 := fmt.Sprintf("replace-%d", first.Unix()/60), fmt.Sprintf("replace-%d", second.Unix()/60)
		f1, f2 := fmt.Sprintf("forbid-%d", first.Unix()/60), fmt.Sprintf("forbid-%d", second.Unix()/60)
		jobClock.SetNow(first.Add(10 * time.Second))
		tickCronJob(replace)
		tickCronJob(forbid)
		Eventually(jobs.get).Should(Equal(map[string]int{r1: 1, f1: 1}))
		Eventually(func() int { return len(activePods(ns)) }).Should(Equal(2), "both Jobs run a pod")

		jobClock.SetNow(second.Add(10 * time.Second))
		tickCronJob(replace)
		tickCronJob(forbid)
		Eventually(jobs.get).Should(Equal(map[string]int{r1: 1, f1: 1, r2: 1}))
		Eventually(func() bool {
			err := k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: r1}, &batchv1alpha1.Job{})
			return err != nil
		}).Should(BeTrue(), "the replaced Job is deleted")
		Eventually(func() []string { return cronEvents(forbid) }).Should(ContainElement(ContainSubstring("JobAlreadyActive")))
		Consistently(jobs.get).ShouldNot(HaveKey(f2))
		Expect(get(forbid).Status.Active).To(HaveLen(1))
		jobs.stop()
	})
})
