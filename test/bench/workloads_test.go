package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
)

// deploymentSide drives the Deployments of one side.
type deploymentSide interface {
	create(ctx context.Context, ns, name string, replicas int32) error
	// roll changes the pod template, which starts a rolling update.
	roll(ctx context.Context, ns, name string) error
	// settled: the controller observed the latest spec, and every replica
	// is updated and available, with no other replica counted.
	settled(ctx context.Context, ns, name string, replicas int32) (bool, error)
	pods(ns string) podSource
}

// rollPatch changes the template of both sides' Deployments alike.
var rollPatch = []byte(`{"spec":{"template":{"metadata":{"annotations":{"bench.skiff.dev/revision":"2"}}}}}`)

func deploymentSpec(name string, replicas int32) appsv1.DeploymentSpec {
	return appsv1.DeploymentSpec{
		Replicas: &replicas,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
		Template: benchTemplate(name),
	}
}

type skiffDeployments struct{ c client.WithWatch }

func (s skiffDeployments) create(ctx context.Context, ns, name string, replicas int32) error {
	return s.c.Create(ctx, &appsv1alpha1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       deploymentSpec(name, replicas),
	})
}

func (s skiffDeployments) roll(ctx context.Context, ns, name string) error {
	d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	return s.c.Patch(ctx, d, client.RawPatch(types.MergePatchType, rollPatch))
}

func (s skiffDeployments) settled(ctx context.Context, ns, name string, replicas int32) (bool, error) {
	d := &appsv1alpha1.Deployment{}
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
		return false, err
	}
	st := d.Status
	return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == replicas &&
		st.AvailableReplicas == replicas && st.Replicas == replicas, nil
}

func (s skiffDeployments) pods(ns string) podSource { return skiffPods(s.c, ns) }

type upstreamDeployments struct{ cs kubernetes.Interface }

func (u upstreamDeployments) create(ctx context.Context, ns, name string, replicas int32) error {
	_, err := u.cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       deploymentSpec(name, replicas),
	}, metav1.CreateOptions{})
	return err
}

func (u upstreamDeployments) roll(ctx context.Context, ns, name string) error {
	_, err := u.cs.AppsV1().Deployments(ns).Patch(ctx, name, types.MergePatchType, rollPatch, metav1.PatchOptions{})
	return err
}

func (u upstreamDeployments) settled(ctx context.Context, ns, name string, replicas int32) (bool, error) {
	d, err := u.cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	st := d.Status
	return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == replicas &&
		st.AvailableReplicas == replicas && st.Replicas == replicas, nil
}

func (u upstreamDeployments) pods(ns string) podSource { return corePods(u.cs, ns) }

// rollout is what one side's Deployment took.
type rollout struct {
	// available: from create until every replica is available.
	available time.Duration
	// update: from the template change until every replica is new and
	// available and the old pods are gone from the API.
	update time.Duration
}

// runDeployment measures one Deployment of replicas in a fresh namespace.
func runDeployment(ctx context.Context, b *testing.B, env *workloadEnv, side deploymentSide, ns string, replicas int32) rollout {
	b.Helper()
	defer env.namespace(ctx, b, ns)()
	tctx, cancel := context.WithCancel(ctx)
	defer cancel()
	tracker := trackPods(tctx, side.pods(ns))
	const name = "web"
	done := func() (bool, error) {
		ok, err := side.settled(ctx, ns, name, replicas)
		return ok && tracker.liveCount() == int(replicas), err
	}
	timeout := 10*time.Minute + time.Duration(replicas)*time.Second
	var api *apiWatch
	if replicas > 1 {
		api = env.watchAPI(ctx, b, ns+"-create")
	}
	start := time.Now()
	if err := side.create(ctx, ns, name, replicas); err != nil {
		b.Fatal(err)
	}
	available := poll(ctx, b, ns+": replicas available", timeout, done)
	if replicas > 1 {
		fmt.Printf("  %s: available in %s; %s\n", ns, secs(available.Sub(start)), tracker.phases(start))
		api.done(ctx, b, "create", int(replicas))
		api = env.watchAPI(ctx, b, ns+"-update")
	}
	rollStart := time.Now()
	if err := side.roll(ctx, ns, name); err != nil {
		b.Fatal(err)
	}
	rolled := poll(ctx, b, ns+": rolling update", timeout, done)
	if replicas > 1 {
		api.done(ctx, b, "rolling update", int(replicas))
	}
	return rollout{available: available.Sub(start), update: rolled.Sub(rollStart)}
}

// BenchmarkDeployment creates a Deployment of 1000 replicas on 100
// simulated nodes and rolls it to a new template, on skiff (skiff's
// Deployment and ReplicaSet controllers and scheduler, skiff-agent's
// simulated nodes) and on upstream (kube-controller-manager's deployment
// and replicaset controllers, kube-scheduler, kwok), on the same API
// server in the same run: once with each side's shipped client limits,
// once with both at 500 QPS. SKIFF_BENCH_REPLICAS and SKIFF_BENCH_NODES
// change the sizes.
func BenchmarkDeployment(b *testing.B) {
	requireBenchTools(b)
	nodes, replicas := envInt("SKIFF_BENCH_NODES", 100), int32(envInt("SKIFF_BENCH_REPLICAS", 1000))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := startWorkloadEnv(ctx, b, nodes)
	skiff, upstream := skiffDeployments{env.c}, upstreamDeployments{env.cs}
	for _, l := range comparisons {
		b.Run(fmt.Sprintf("%dreplicas-%dnodes-%s", replicas, nodes, l.name), func(b *testing.B) {
			for i := range b.N {
				skiffLimits, upstreamLimits := l.describe()
				stop := env.startSkiff(ctx, b, l, "apps", "scheduler")
				runDeployment(ctx, b, env, skiff, fmt.Sprintf("warm-skiff-%s-%d", l.name, i), 1)
				s := runDeployment(ctx, b, env, skiff, fmt.Sprintf("skiff-%s-%d", l.name, i), replicas)
				stop()
				stop = env.startUpstream(b, l, "deployment,replicaset")
				runDeployment(ctx, b, env, upstream, fmt.Sprintf("warm-upstream-%s-%d", l.name, i), 1)
				u := runDeployment(ctx, b, env, upstream, fmt.Sprintf("upstream-%s-%d", l.name, i), replicas)
				stop()

				b.ReportMetric(s.available.Seconds(), "skiff-available-s")
				b.ReportMetric(s.update.Seconds(), "skiff-update-s")
				b.ReportMetric(u.available.Seconds(), "upstream-available-s")
				b.ReportMetric(u.update.Seconds(), "upstream-update-s")
				b.ReportMetric(ratio(s.available, u.available), "skiff/upstream-available")
				b.ReportMetric(ratio(s.update, u.update), "skiff/upstream-update")
				fmt.Printf("%s\n  skiff     %-7s to available, %-7s rolling update  (%s)\n  upstream  %-7s to available, %-7s rolling update  (%s)\n  skiff/upstream: available %.2f, update %.2f\n",
					b.Name(), secs(s.available), secs(s.update), skiffLimits, secs(u.available), secs(u.update), upstreamLimits,
					ratio(s.available, u.available), ratio(s.update, u.update))
			}
		})
	}
}
