package utils

import (
	"context"
	"fmt"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// PodWatch follows every pod event of a namespace from a consistent
// starting list and calls a check with the pods as they stand after each
// event, so that an invariant ("never more than N pods") is proven at
// every change rather than sampled.
type PodWatch struct {
	mu     sync.Mutex
	pods   map[types.UID]*corev1alpha1.Pod
	seen   map[types.UID]*corev1alpha1.Pod
	events int
	check  func(pods map[types.UID]*corev1alpha1.Pod)
	w      watch.Interface
	done   chan struct{}
	err    error
	closed bool
}

// WatchPods lists the pods of ns and watches them from that list's
// resourceVersion. check runs under the watch's lock after the list and
// after each event; it must not block.
func WatchPods(ctx context.Context, c client.WithWatch, ns string, check func(pods map[types.UID]*corev1alpha1.Pod)) (*PodWatch, error) {
	var list corev1alpha1.PodList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	w, err := c.Watch(ctx, &corev1alpha1.PodList{}, client.InNamespace(ns),
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		return nil, err
	}
	pw := &PodWatch{pods: map[types.UID]*corev1alpha1.Pod{}, seen: map[types.UID]*corev1alpha1.Pod{},
		check: check, w: w, done: make(chan struct{})}
	for i := range list.Items {
		p := &list.Items[i]
		pw.pods[p.UID], pw.seen[p.UID] = p, p
	}
	pw.run()
	return pw, nil
}

func (pw *PodWatch) run() {
	pw.mu.Lock()
	if pw.check != nil {
		pw.check(pw.pods)
	}
	pw.mu.Unlock()
	go func() {
		defer close(pw.done)
		for ev := range pw.w.ResultChan() {
			pw.mu.Lock()
			switch p := ev.Object.(type) {
			case *corev1alpha1.Pod:
				if ev.Type == watch.Deleted {
					delete(pw.pods, p.UID)
				} else {
					pw.pods[p.UID] = p
				}
				pw.seen[p.UID] = p
				pw.events++
				if pw.check != nil {
					pw.check(pw.pods)
				}
			case *metav1.Status:
				// Stopping the watch closes its stream, which the decoder may report.
				if !pw.closed && pw.err == nil {
					pw.err = fmt.Errorf("pod watch failed: %s", p.Message)
				}
			}
			pw.mu.Unlock()
		}
		pw.mu.Lock()
		if !pw.closed && pw.err == nil {
			pw.err = fmt.Errorf("the pod watch ended before Stop: some changes were not checked")
		}
		pw.mu.Unlock()
	}()
}

// Events is the number of pod events seen so far.
func (pw *PodWatch) Events() int {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.events
}

// Seen returns the last state of every pod the watch has seen, deleted
// ones included.
func (pw *PodWatch) Seen() map[types.UID]*corev1alpha1.Pod {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	out := make(map[types.UID]*corev1alpha1.Pod, len(pw.seen))
	for k, v := range pw.seen {
		out[k] = v
	}
	return out
}

// Stop ends the watch. It returns an error when the watch failed or ended
// on its own, since the invariant was then not checked at every change.
func (pw *PodWatch) Stop() error {
	pw.mu.Lock()
	pw.closed = true
	pw.mu.Unlock()
	pw.w.Stop()
	<-pw.done
	pw.mu.Lock()
	defer pw.mu.Unlock()
	return pw.err
}
