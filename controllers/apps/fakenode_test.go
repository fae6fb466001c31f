package apps_test

import (
	"context"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// The fake node plays scheduler and agent for the tests: it binds every
// pod (to the node its required node affinity names, as DaemonSet pods
// carry, or else to defaultNode) and reports it Running and Ready. A pod
// whose first image contains "unready" runs but never becomes ready; one
// whose image contains "unschedulable" is never bound. A namespace in
// heldNamespaces is left alone (pods stay Pending and unbound).
const defaultNode = "node-1"

var (
	heldMu         sync.Mutex
	heldNamespaces = map[string]bool{}
)

// holdNode stops or restarts the fake node for namespace ns.
func holdNode(ns string, hold bool) {
	heldMu.Lock()
	defer heldMu.Unlock()
	heldNamespaces[ns] = hold
}

func isHeld(ns string) bool {
	heldMu.Lock()
	defer heldMu.Unlock()
	return heldNamespaces[ns]
}

type fakeNodeReconciler struct{ client.Client }

func startFakeNode() {
	mgr := newManager()
	Expect(ctrl.NewControllerManagedBy(mgr).For(&corev1alpha1.Pod{}).Named("fake-node").
		Complete(&fakeNodeReconciler{mgr.GetClient()})).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

func (r *fakeNodeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	pod := &corev1alpha1.Pod{}
	if err := r.Get(ctx, req.NamespacedName, pod); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if pod.DeletionTimestamp != nil || isHeld(pod.Namespace) || len(pod.Spec.Containers) == 0 {
		return ctrl.Result{}, nil
	}
	image := pod.Spec.Containers[0].Image
	if strings.Contains(image, "unschedulable") {
		return ctrl.Result{}, nil
	}
	if pod.Spec.NodeName == "" {
		pod.Spec.NodeName = targetNode(pod)
		if err := r.Update(ctx, pod); err != nil {
			return ctrl.Result{}, err
		}
	}
	ready := !strings.Contains(image, "unready")
	want := pod.DeepCopy()
	want.Status.Phase = corev1.PodRunning
	set := func(t string, ok bool) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		meta.SetStatusCondition(&want.Status.Conditions, metav1.Condition{Type: t, Status: s, Reason: "FakeNode"})
	}
	set(corev1alpha1.PodScheduled, true)
	set(corev1alpha1.ContainersReady, ready)
	set(conditions.Ready, ready)
	if want.Status.Phase == pod.Status.Phase && meta.IsStatusConditionTrue(pod.Status.Conditions, conditions.Ready) == ready &&
		meta.FindStatusCondition(pod.Status.Conditions, conditions.Ready) != nil {
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, r.Status().Update(ctx, want)
}

// targetNode is the node a pod's required node affinity pins it to
// (metadata.name In [node], as DaemonSet pods carry), else defaultNode.
func targetNode(pod *corev1alpha1.Pod) string {
	if a := pod.Spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			for _, f := range term.MatchFields {
				if f.Key == "metadata.name" && f.Operator == corev1.NodeSelectorOpIn && len(f.Values) == 1 {
					return f.Values[0]
				}
			}
		}
	}
	return defaultNode
}
