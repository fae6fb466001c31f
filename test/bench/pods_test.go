package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// podView is what the benchmarks need of a pod of either API: core
// Pods of the upstream side, skiff Pods of skiff's.
type podView struct {
	name, node string
	ready      bool
	deleted    bool
}

// podSource lists and watches the pods of one namespace in one API.
type podSource struct {
	list  func(ctx context.Context) ([]podView, string, error)
	watch func(ctx context.Context, rv string) (watch.Interface, error)
	view  func(obj runtime.Object) (podView, bool)
}

// corePods is the podSource of core Pods in ns.
func corePods(cs kubernetes.Interface, ns string) podSource {
	return podSource{
		list: func(ctx context.Context) ([]podView, string, error) {
			l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return nil, "", err
			}
			out := make([]podView, len(l.Items))
			for i, p := range l.Items {
				out[i] = corePodView(&p)
			}
			return out, l.ResourceVersion, nil
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
		},
		view: func(obj runtime.Object) (podView, bool) {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return podView{}, false
			}
			return corePodView(p), true
		},
	}
}

func corePodView(p *corev1.Pod) podView {
	v := podView{name: p.Name, node: p.Spec.NodeName}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			v.ready = true
		}
	}
	return v
}

func skiffPodView(p *corev1alpha1.Pod) podView {
	v := podView{name: p.Name, node: p.Spec.NodeName}
	for _, c := range p.Status.Conditions {
		if c.Type == string(corev1.PodReady) && c.Status == metav1.ConditionTrue {
			v.ready = true
		}
	}
	return v
}

// skiffPods is the podSource of skiff Pods in ns.
func skiffPods(c client.WithWatch, ns string) podSource {
	return podSource{
		list: func(ctx context.Context) ([]podView, string, error) {
			l := &corev1alpha1.PodList{}
			if err := c.List(ctx, l, client.InNamespace(ns)); err != nil {
				return nil, "", err
			}
			out := make([]podView, len(l.Items))
			for i, p := range l.Items {
				out[i] = skiffPodView(&p)
			}
			return out, l.ResourceVersion, nil
		},
		watch: func(ctx context.Context, rv string) (watch.Interface, error) {
			return c.Watch(ctx, &corev1alpha1.PodList{}, client.InNamespace(ns),
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
		},
		view: func(obj runtime.Object) (podView, bool) {
			p, ok := obj.(*corev1alpha1.Pod)
			if !ok {
				return podView{}, false
			}
			return skiffPodView(p), true
		},
	}
}

// podTracker follows the pods of a podSource: when each was first seen
// bound to a node, and which still exist. A watch the server ends is
// resumed after a fresh list (a watch on a just-created CRD resource can
// fail with "Too large resource version").
type podTracker struct {
	mu      sync.Mutex
	created map[string]time.Time
	bound   map[string]time.Time
	ready   map[string]time.Time
	live    map[string]bool
	changed chan struct{} // closed and replaced on every change
}

// trackPods starts following src until ctx ends.
func trackPods(ctx context.Context, src podSource) *podTracker {
	t := &podTracker{created: map[string]time.Time{}, bound: map[string]time.Time{}, ready: map[string]time.Time{}, live: map[string]bool{}, changed: make(chan struct{})}
	go func() {
		for ctx.Err() == nil {
			items, rv, err := src.list(ctx)
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			t.mu.Lock()
			t.live = map[string]bool{}
			for _, p := range items {
				t.seenLocked(p)
			}
			t.notifyLocked()
			t.mu.Unlock()
			w, err := src.watch(ctx, rv)
			if err != nil {
				continue
			}
			for ev := range w.ResultChan() {
				p, ok := src.view(ev.Object)
				if !ok {
					continue
				}
				p.deleted = ev.Type == watch.Deleted
				t.mu.Lock()
				t.seenLocked(p)
				t.notifyLocked()
				t.mu.Unlock()
			}
			w.Stop()
		}
	}()
	return t
}

func (t *podTracker) seenLocked(p podView) {
	if p.deleted {
		delete(t.live, p.name)
		return
	}
	t.live[p.name] = true
	now := time.Now()
	if _, ok := t.created[p.name]; !ok {
		t.created[p.name] = now
	}
	if _, ok := t.bound[p.name]; !ok && p.node != "" {
		t.bound[p.name] = now
	}
	if _, ok := t.ready[p.name]; !ok && p.ready {
		t.ready[p.name] = now
	}
}

// phases says, relative to start, when the last of the pods seen so far
// was first seen, bound and Ready.
func (t *podTracker) phases(start time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	last := func(m map[string]time.Time) time.Duration {
		var l time.Time
		for _, v := range m {
			if v.After(l) {
				l = v
			}
		}
		if l.IsZero() {
			return 0
		}
		return l.Sub(start)
	}
	return fmt.Sprintf("%d pods: last created %s, bound %s, Ready %s", len(t.created),
		secs(last(t.created)), secs(last(t.bound)), secs(last(t.ready)))
}

func (t *podTracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// waitFor waits until cond holds for the bound times and the number of
// live pods, or ctx ends.
func (t *podTracker) waitFor(ctx context.Context, cond func(bound map[string]time.Time, live int) bool) bool {
	for {
		t.mu.Lock()
		ok := cond(t.bound, len(t.live))
		ch := t.changed
		t.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// waitBound waits until want pods have been bound and returns when each was.
func (t *podTracker) waitBound(ctx context.Context, b *testing.B, want int) map[string]time.Time {
	b.Helper()
	t.waitFor(ctx, func(bound map[string]time.Time, _ int) bool { return len(bound) >= want })
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]time.Time, len(t.bound))
	for k, v := range t.bound {
		out[k] = v
	}
	return out
}

// firstSeen is when the watch delivered the first pod: how far the API
// server's watch lags behind a flood of creations.
func (t *podTracker) firstSeen() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first time.Time
	for _, c := range t.created {
		if first.IsZero() || c.Before(first) {
			first = c
		}
	}
	return first
}

// live is the number of pods that exist now.
func (t *podTracker) liveCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}
