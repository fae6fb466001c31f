package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri/fake"
	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
)

// jobSide drives the Jobs of one side.
type jobSide interface {
	create(ctx context.Context, ns, name string, completions int32) error
	complete(ctx context.Context, ns, name string) (bool, error)
}

// indexedJobSpec is the Job of both sides: Indexed, parallelism equal to
// completions as upstream's BenchmarkLargeIndexedJob, pods that exit 0.
// kwok's default stages complete a Running pod owned by a Job at once;
// the annotations make skiff's simulated containers exit 0 at once too
// (kwok ignores them).
func indexedJobSpec(name string, completions int32) batchv1.JobSpec {
	mode := batchv1.IndexedCompletion
	tmpl := benchTemplate(name)
	tmpl.Annotations = map[string]string{fake.AnnotationExitCode: "0", fake.AnnotationRunSeconds: "0"}
	tmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
	return batchv1.JobSpec{
		Completions: &completions, Parallelism: &completions, CompletionMode: &mode,
		Template: tmpl,
	}
}

type skiffJobs struct{ c client.WithWatch }

func (s skiffJobs) create(ctx context.Context, ns, name string, completions int32) error {
	return s.c.Create(ctx, &batchv1alpha1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       indexedJobSpec(name, completions),
	})
}

func (s skiffJobs) complete(ctx context.Context, ns, name string) (bool, error) {
	j := &batchv1alpha1.Job{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, j); err != nil {
		return false, err
	}
	if meta.IsStatusConditionTrue(j.Status.Conditions, batchv1alpha1.JobFailed) {
		return false, fmt.Errorf("skiff Job %s/%s failed", ns, name)
	}
	return meta.IsStatusConditionTrue(j.Status.Conditions, batchv1alpha1.JobComplete), nil
}

type upstreamJobs struct{ cs kubernetes.Interface }

func (u upstreamJobs) create(ctx context.Context, ns, name string, completions int32) error {
	_, err := u.cs.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       indexedJobSpec(name, completions),
	}, metav1.CreateOptions{})
	return err
}

func (u upstreamJobs) complete(ctx context.Context, ns, name string) (bool, error) {
	j, err := u.cs.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			return true, nil
		case batchv1.JobFailed:
			return false, fmt.Errorf("upstream Job %s/%s failed", ns, name)
		}
	}
	return false, nil
}

// runJob measures one Job from create to Complete in a fresh namespace.
func runJob(ctx context.Context, b *testing.B, env *workloadEnv, side jobSide, ns string, completions int32) time.Duration {
	b.Helper()
	defer env.namespace(ctx, b, ns)()
	const name = "work"
	start := time.Now()
	if err := side.create(ctx, ns, name, completions); err != nil {
		b.Fatal(err)
	}
	done := poll(ctx, b, ns+": Job complete", 10*time.Minute+time.Duration(completions)*time.Second,
		func() (bool, error) { return side.complete(ctx, ns, name) })
	return done.Sub(start)
}

// BenchmarkIndexedJob runs an Indexed Job of 1000 completions
// (parallelism 1000, as upstream's BenchmarkLargeIndexedJob) on 100
// simulated nodes until it is Complete, on skiff (Job controller,
// scheduler, skiff-agent's simulated nodes) and on upstream
// (kube-controller-manager's job controller, kube-scheduler, kwok), on the
// same API server in the same run, with shipped client limits and with
// both at 500 QPS. SKIFF_BENCH_COMPLETIONS and SKIFF_BENCH_NODES change
// the sizes.
func BenchmarkIndexedJob(b *testing.B) {
	requireBenchTools(b)
	nodes, completions := envInt("SKIFF_BENCH_NODES", 100), int32(envInt("SKIFF_BENCH_COMPLETIONS", 1000))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := startWorkloadEnv(ctx, b, nodes)
	skiff, upstream := skiffJobs{env.c}, upstreamJobs{env.cs}
	for _, l := range comparisons {
		b.Run(fmt.Sprintf("%dcompletions-%dnodes-%s", completions, nodes, l.name), func(b *testing.B) {
			for i := range b.N {
				skiffLimits, upstreamLimits := l.describe()
				stop := env.startSkiff(ctx, b, l, "batch", "scheduler")
				runJob(ctx, b, env, skiff, fmt.Sprintf("warm-skiff-%s-%d", l.name, i), 1)
				s := runJob(ctx, b, env, skiff, fmt.Sprintf("skiff-%s-%d", l.name, i), completions)
				stop()
				stop = env.startUpstream(b, l, "job")
				runJob(ctx, b, env, upstream, fmt.Sprintf("warm-upstream-%s-%d", l.name, i), 1)
				u := runJob(ctx, b, env, upstream, fmt.Sprintf("upstream-%s-%d", l.name, i), completions)
				stop()

				b.ReportMetric(s.Seconds(), "skiff-complete-s")
				b.ReportMetric(u.Seconds(), "upstream-complete-s")
				b.ReportMetric(ratio(s, u), "skiff/upstream")
				fmt.Printf("%s\n  skiff     %-7s to Complete  (%s)\n  upstream  %-7s to Complete  (%s)\n  skiff/upstream: %.2f\n",
					b.Name(), secs(s), skiffLimits, secs(u), upstreamLimits, ratio(s, u))
			}
		})
	}
}
