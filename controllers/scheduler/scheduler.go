package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/internal/kstatus"
	"github.com/skiff-dev/skiff/internal/podstatus"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// Name is the scheduler's name in events and logs.
const Name = "skiff-scheduler"

// maxConcurrentWrites bounds the bindings and status writes in flight.
const maxConcurrentWrites = 64

// Scheduler assigns pending skiff Pods to Nodes. It is a manager Runnable
// that runs only on the elected leader.
type Scheduler struct {
	client    client.Client
	status    client.SubResourceWriter
	apiReader client.Reader
	informers cache.Informers
	recorder  events.EventRecorder
	clock     clock.WithTicker

	cache  *Cache
	queue  *Queue
	writes chan struct{}
}

var (
	_ manager.Runnable               = (*Scheduler)(nil)
	_ manager.LeaderElectionRunnable = (*Scheduler)(nil)
)

// New returns a scheduler. c reads claims, volumes and storage classes
// (from the cache) and writes pods; apiReader reads pods fresh when a write
// conflicts; informers deliver pods, nodes, namespaces, claims and
// PodDisruptionBudgets.
func New(c client.Client, apiReader client.Reader, informers cache.Informers, recorder events.EventRecorder, clk clock.WithTicker) *Scheduler {
	return &Scheduler{
		client:    c,
		status:    c.Status(),
		apiReader: apiReader,
		informers: informers,
		recorder:  recorder,
		clock:     clk,
		cache:     NewCache(),
		queue:     NewQueue(clk),
		writes:    make(chan struct{}, maxConcurrentWrites),
	}
}

// WithStatusClient makes the scheduler write pod status (the PodScheduled
// condition) through c instead of the client it binds with. A CRD has no
// binding subresource, so a bind is two writes, spec.nodeName and then the
// condition; a client of their own for the conditions keeps the binding
// rate at the client's limit, as upstream's single binding write does,
// while upstream's events go through a client of their own as well.
func (s *Scheduler) WithStatusClient(c client.Client) *Scheduler {
	s.status = c.Status()
	return s
}

// WithParallelism bounds how many nodes a cycle filters and scores at once
// (DefaultParallelism when n <= 0); GOMAXPROCS bounds it as well.
func (s *Scheduler) WithParallelism(n int) *Scheduler {
	s.cache.SetParallelism(n)
	return s
}

// SetupWithManager adds the scheduler to the manager.
func (s *Scheduler) SetupWithManager(mgr ctrl.Manager) error {
	return mgr.Add(s)
}

// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods,verbs=get;list;watch;patch;delete
// +kubebuilder:rbac:groups=core.skiff.dev,resources=pods/status,verbs=get;patch
// +kubebuilder:rbac:groups=core.skiff.dev,resources=nodes;persistentvolumeclaims;persistentvolumes,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.skiff.dev,resources=storageclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy.skiff.dev,resources=poddisruptionbudgets,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// NeedLeaderElection makes the scheduler run only on the leader.
func (s *Scheduler) NeedLeaderElection() bool { return true }

// Start watches the cluster and schedules pods until ctx is done.
func (s *Scheduler) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("scheduler")
	ctx = ctrl.LoggerInto(ctx, log)
	if err := s.watch(ctx); err != nil {
		return err
	}
	if !s.informers.WaitForCacheSync(ctx) {
		return errors.New("scheduler: caches did not sync")
	}
	log.Info("Starting scheduler", "nodes", s.cache.NodeCount())
	go func() {
		t := s.clock.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				s.queue.Close()
				return
			case <-t.C():
				s.queue.Flush()
				s.cache.Expire(s.clock.Now())
			}
		}
	}()
	for {
		p := s.queue.Pop()
		if p == nil {
			return nil
		}
		s.scheduleOne(ctx, p)
	}
}

// responsible tells whether this scheduler places the pod.
func responsible(pod *corev1alpha1.Pod) bool {
	n := pod.Spec.SchedulerName
	return n == "" || n == DefaultSchedulerName || n == SkiffSchedulerName
}

func (s *Scheduler) watch(ctx context.Context) error {
	handlers := []struct {
		obj client.Object
		h   toolscache.ResourceEventHandler
	}{
		{&corev1alpha1.Pod{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { s.onPod(o) },
			UpdateFunc: func(_, o any) { s.onPod(o) },
			DeleteFunc: s.onPodDelete,
		}},
		{&corev1alpha1.Node{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    s.onNodeAdd,
			UpdateFunc: s.onNodeUpdate,
			DeleteFunc: s.onNodeDelete,
		}},
		{&corev1.Namespace{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { s.onNamespace(o, false) },
			UpdateFunc: func(_, o any) { s.onNamespace(o, false) },
			DeleteFunc: func(o any) { s.onNamespace(o, true) },
		}},
		// Budgets only steer preemption's choice of victims: as upstream,
		// their changes do not move waiting pods.
		{&policyv1alpha1.PodDisruptionBudget{}, toolscache.ResourceEventHandlerFuncs{
			AddFunc:    s.onPDB,
			UpdateFunc: func(_, o any) { s.onPDB(o) },
			DeleteFunc: s.onPDBDelete,
		}},
		// A claim or volume that changes may let a waiting pod fit.
		{&corev1alpha1.PersistentVolumeClaim{}, moveOnAny(s.queue)},
		{&corev1alpha1.PersistentVolume{}, moveOnAny(s.queue)},
	}
	for _, h := range handlers {
		inf, err := s.informers.GetInformer(ctx, h.obj)
		if err != nil {
			return fmt.Errorf("scheduler: watching %T: %w", h.obj, err)
		}
		if _, err := inf.AddEventHandler(h.h); err != nil {
			return fmt.Errorf("scheduler: watching %T: %w", h.obj, err)
		}
	}
	return nil
}

func moveOnAny(q *Queue) toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { q.MoveAllUnschedulable() },
		UpdateFunc: func(any, any) { q.MoveAllUnschedulable() },
	}
}

func (s *Scheduler) onPod(o any) {
	pod, ok := o.(*corev1alpha1.Pod)
	if !ok {
		return
	}
	key := podKey(pod.Namespace, pod.Name)
	switch {
	case pod.Spec.NodeName != "":
		s.queue.Delete(key)
		wasPlaced := s.cache.IsAssumedOrBound(key)
		s.cache.UpsertPod(pod)
		if isTerminal(pod) && wasPlaced {
			s.queue.MoveAllUnschedulable() // a finished pod frees its node
		}
	case responsible(pod) && pod.DeletionTimestamp == nil && !isTerminal(pod):
		if s.cache.IsAssumedOrBound(key) {
			return // binding in flight
		}
		pi := newPodInfo(pod)
		s.cache.SetNominated(pi, pod.Status.NominatedNodeName)
		s.queue.Add(pi)
	default:
		s.queue.Delete(key)
	}
}

func (s *Scheduler) onPodDelete(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	pod, ok := o.(*corev1alpha1.Pod)
	if !ok {
		return
	}
	key := podKey(pod.Namespace, pod.Name)
	wasPlaced := s.cache.IsAssumedOrBound(key)
	s.cache.RemovePod(pod.Namespace, pod.Name)
	s.queue.Delete(key)
	if wasPlaced || pod.Spec.NodeName != "" {
		s.queue.MoveAllUnschedulable()
	}
}

func (s *Scheduler) onNodeAdd(o any) {
	if node, ok := o.(*corev1alpha1.Node); ok {
		s.cache.UpsertNode(node)
		s.queue.MoveAllUnschedulable()
	}
}

func (s *Scheduler) onNodeUpdate(oldObj, newObj any) {
	old, ok1 := oldObj.(*corev1alpha1.Node)
	node, ok2 := newObj.(*corev1alpha1.Node)
	if !ok1 || !ok2 {
		return
	}
	s.cache.UpsertNode(node)
	if nodeSchedulingChanged(old, node) {
		s.queue.MoveAllUnschedulable()
	}
}

// nodeSchedulingChanged tells whether a node update can make a pod fit:
// its allocatable, labels, taints or cordon changed.
func nodeSchedulingChanged(old, node *corev1alpha1.Node) bool {
	return !equality.Semantic.DeepEqual(old.Status.Allocatable, node.Status.Allocatable) ||
		!equality.Semantic.DeepEqual(old.Labels, node.Labels) ||
		!equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) ||
		old.Spec.Unschedulable != node.Spec.Unschedulable
}

func (s *Scheduler) onNodeDelete(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if node, ok := o.(*corev1alpha1.Node); ok {
		s.cache.RemoveNode(node.Name)
	}
}

func (s *Scheduler) onPDB(o any) {
	if pdb, ok := o.(*policyv1alpha1.PodDisruptionBudget); ok {
		s.cache.UpsertPDB(pdb)
	}
}

func (s *Scheduler) onPDBDelete(o any) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	if pdb, ok := o.(*policyv1alpha1.PodDisruptionBudget); ok {
		s.cache.RemovePDB(pdb.Namespace, pdb.Name)
	}
}

func (s *Scheduler) onNamespace(o any, deleted bool) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return
	}
	l := ns.Labels
	if deleted {
		l = nil
	} else if l == nil {
		l = map[string]string{}
	}
	s.cache.SetNamespace(ns.Name, l)
}

// scheduleOne runs one scheduling cycle for a pod.
func (s *Scheduler) scheduleOne(ctx context.Context, qp *queuedPod) {
	pi := qp.popped
	log := ctrl.LoggerFrom(ctx).WithValues("pod", klog.KObj(pi.pod))
	start := s.clock.Now()

	// 1. Skip a pod that is already placed.
	if s.cache.IsAssumedOrBound(pi.key) {
		s.queue.Done(pi.key)
		return
	}
	// 2. Look up the pod's claims and volumes, outside the cache lock.
	vol := s.volumeInfo(ctx, pi)

	// 3. Filter and score the nodes under the cache lock, and assume the pod
	//    on the chosen node so the next cycle counts it.
	node, fe, p := s.cache.schedule(pi, vol, s.clock.Now())

	if fe != nil {
		log.V(4).Info("Pod does not fit", "reason", fe.Error(), "took", s.clock.Since(start))
		// 4a. Preempt lower-priority pods if that makes room, then wait for
		//     the victims to go; report why the pod waits.
		nominated := s.preempt(ctx, pi, p)
		s.queue.AddUnschedulable(qp, false)
		observeAttempt(resultUnschedulable, s.clock.Since(start), qp.timestamp, s.clock.Now())
		s.async(func() { s.reportUnschedulable(ctx, pi, fe, nominated) })
		return
	}
	log.V(4).Info("Assumed pod", "node", node, "took", s.clock.Since(start))
	// 4b. Bind, asynchronously: the next cycle starts at once.
	s.async(func() {
		if err := s.bind(ctx, pi, node); err != nil {
			s.cache.Forget(pi.key)
			if apierrors.IsNotFound(err) {
				s.queue.Delete(pi.key)
				return
			}
			log.Info("Binding failed, retrying after back-off", "node", node, "err", err.Error())
			observeAttempt(resultError, s.clock.Since(start), qp.timestamp, s.clock.Now())
			s.queue.AddUnschedulable(qp, true)
			return
		}
		observeAttempt(resultScheduled, s.clock.Since(start), qp.timestamp, s.clock.Now())
		s.cache.FinishBinding(pi.key, s.clock.Now())
		s.queue.Done(pi.key)
	})
}

// schedule is the cycle's work under the cache lock: the chosen node, or
// why none fits and what preemption decided. now is when pods that have
// not started count as starting, for preemption.
func (c *Cache) schedule(pi *podInfo, vol volumeInfo, now time.Time) (string, *fitError, preemption) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if vol.preFilterMsg != "" {
		return "", &fitError{numAllNodes: len(c.order), preFilterMsg: vol.preFilterMsg}, preemption{}
	}
	cs := c.prepareLocked(pi, vol)
	feasible, fe := c.findFeasibleLocked(cs)
	if fe != nil {
		p := c.findPreemptionLocked(cs, fe, now)
		switch {
		case p.cand != nil:
			// Count the pod on the node at once, so the next cycles leave
			// it the room its victims free; nominations it overrides go.
			c.setNominatedLocked(pi, p.cand.node)
			for _, n := range p.lowerNominated {
				c.setNominatedLocked(n, "")
			}
		case p.clearNomination:
			c.setNominatedLocked(pi, "")
		}
		return "", fe, p
	}
	node := selectHost(c.par, cs, feasible)
	c.assumeLocked(pi, node)
	return node, nil, preemption{}
}

func (s *Scheduler) async(f func()) {
	s.writes <- struct{}{}
	go func() {
		defer func() { <-s.writes }()
		f()
	}()
}

// volumeInfo reads the pod's claims: a claim that is missing, being
// deleted, or unbound with Immediate binding keeps the pod off every node;
// a bound volume's node affinity restricts the nodes.
func (s *Scheduler) volumeInfo(ctx context.Context, pi *podInfo) volumeInfo {
	var vi volumeInfo
	for _, v := range pi.pod.Spec.Volumes {
		if v.PersistentVolumeClaim == nil {
			continue
		}
		name := v.PersistentVolumeClaim.ClaimName
		pvc := &corev1alpha1.PersistentVolumeClaim{}
		if err := s.client.Get(ctx, types.NamespacedName{Namespace: pi.pod.Namespace, Name: name}, pvc); err != nil {
			vi.preFilterMsg = fmt.Sprintf("persistentvolumeclaim %q not found", name)
			return vi
		}
		if pvc.DeletionTimestamp != nil {
			vi.preFilterMsg = fmt.Sprintf("persistentvolumeclaim %q is being deleted", name)
			return vi
		}
		if pvc.Spec.VolumeName == "" {
			if !s.waitsForFirstConsumer(ctx, pvc) {
				vi.preFilterMsg = reasonUnboundImmediateClaims
				return vi
			}
			vi.unbound = append(vi.unbound, s.claimPlacement(ctx, pvc))
			continue
		}
		pv := &corev1alpha1.PersistentVolume{}
		if err := s.client.Get(ctx, types.NamespacedName{Name: pvc.Spec.VolumeName}, pv); err != nil {
			vi.preFilterMsg = fmt.Sprintf("persistentvolume %q not found", pvc.Spec.VolumeName)
			return vi
		}
		if na := pv.Spec.NodeAffinity; na != nil && na.Required != nil {
			vi.affinity = append(vi.affinity, na.Required)
		}
	}
	return vi
}

func (s *Scheduler) waitsForFirstConsumer(ctx context.Context, pvc *corev1alpha1.PersistentVolumeClaim) bool {
	if pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName == "" {
		return false
	}
	sc := &storagev1alpha1.StorageClass{}
	if err := s.client.Get(ctx, types.NamespacedName{Name: *pvc.Spec.StorageClassName}, sc); err != nil {
		return false
	}
	return sc.VolumeBindingMode != nil && *sc.VolumeBindingMode == storagev1.VolumeBindingWaitForFirstConsumer
}

// bind sets spec.nodeName, guarded by the resourceVersion the decision was
// made on, then the PodScheduled condition.
func (s *Scheduler) bind(ctx context.Context, pi *podInfo, node string) error {
	pod := pi.pod.DeepCopy()
	pod.Spec.NodeName = node
	if err := s.client.Patch(ctx, pod, client.MergeFromWithOptions(pi.pod, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("binding pod %s to node %s: %w", pi.key, node, err)
	}
	if err := s.setScheduled(ctx, pod, node); err != nil {
		// The pod is bound; only its condition is missing. Say so, do not unbind.
		ctrl.LoggerFrom(ctx).Error(err, "Setting PodScheduled failed", "pod", klog.KObj(pod))
	}
	s.recorder.Eventf(pod, nil, corev1.EventTypeNormal, "Scheduled", "Binding",
		"Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
	return nil
}

// setScheduled sets PodScheduled=True on a pod just bound to node. A pod
// with a nominated node gets a merge patch that also clears it, guarded by
// its resourceVersion. Any other pod gets a server-side apply of the one
// condition: conditions are a map keyed by type, so the apply touches
// only PodScheduled and needs no resourceVersion. The agent writes the
// pod's status as soon as it sees spec.nodeName; a guarded patch would
// then be refused with a conflict and cost a read and a second write.
func (s *Scheduler) setScheduled(ctx context.Context, pod *corev1alpha1.Pod, node string) error {
	cond := metav1.Condition{
		Type: corev1alpha1.PodScheduled, Status: metav1.ConditionTrue,
		Reason: corev1alpha1.ReasonScheduled, Message: fmt.Sprintf("Bound to node %s", node),
	}
	if pod.Status.NominatedNodeName != "" {
		return s.patchStatus(ctx, pod, func(p *corev1alpha1.Pod) {
			p.Status.NominatedNodeName = ""
			meta.SetStatusCondition(&p.Status.Conditions, cond)
		})
	}
	cond.LastTransitionTime = metav1.NewTime(s.clock.Now())
	if old := meta.FindStatusCondition(pod.Status.Conditions, cond.Type); old != nil && old.Status == cond.Status {
		cond.LastTransitionTime = old.LastTransitionTime
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": corev1alpha1.GroupVersion.String(),
		"kind":       "Pod",
		"metadata":   map[string]any{"name": pod.Name, "namespace": pod.Namespace},
		"status": map[string]any{"conditions": []any{map[string]any{
			"type": cond.Type, "status": string(cond.Status), "reason": cond.Reason, "message": cond.Message,
			"lastTransitionTime": cond.LastTransitionTime.UTC().Format(time.RFC3339),
		}}},
	}}
	return s.status.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(Name), client.ForceOwnership)
}

// patchStatus applies mutate to the pod's status with optimistic
// concurrency, reading the pod again when another writer got there first.
func (s *Scheduler) patchStatus(ctx context.Context, pod *corev1alpha1.Pod, mutate func(*corev1alpha1.Pod)) error {
	return podstatus.Patch(ctx, s.apiReader, s.status, pod, mutate)
}

// reportUnschedulable sets PodScheduled=False with the reasons and, when
// nominated is not nil, status.nominatedNodeName, in one status write as
// upstream's handleSchedulingFailure; it records a FailedScheduling event.
func (s *Scheduler) reportUnschedulable(ctx context.Context, pi *podInfo, fe *fitError, nominated *string) {
	msg := fe.Error()
	s.recorder.Eventf(pi.pod, nil, corev1.EventTypeWarning, "FailedScheduling", "Scheduling", "%s", msg)
	err := s.patchStatus(ctx, pi.pod.DeepCopy(), func(p *corev1alpha1.Pod) {
		if p.Spec.NodeName != "" {
			return // bound meanwhile: the failure is history
		}
		if nominated != nil {
			p.Status.NominatedNodeName = *nominated
		}
		meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
			Type: corev1alpha1.PodScheduled, Status: metav1.ConditionFalse,
			Reason: corev1alpha1.ReasonUnschedulable, Message: msg,
		})
		kstatus.SetProgress(&p.Status.Conditions, kstatus.InProgress, metav1.Condition{Reason: corev1alpha1.ReasonUnschedulable, Message: msg, ObservedGeneration: p.Generation})
	})
	if err != nil && !apierrors.IsNotFound(err) {
		ctrl.LoggerFrom(ctx).Error(err, "Reporting unschedulable pod failed", "pod", klog.KObj(pi.pod))
	}
}

// victimWorkers bounds how many victims of one preemption are marked and
// deleted at once (upstream's parallelism).
const victimWorkers = DefaultParallelism

// preempt carries out what preemption decided, as upstream's
// prepareCandidate: the preemptor's status.nominatedNodeName names the
// node, each victim gets the DisruptionTarget condition, is deleted and
// gets a Preempted event, and pods of lower priority nominated to the node
// lose their nomination. It returns the preemptor's nominatedNodeName to
// write with its PodScheduled condition (reportUnschedulable): the node,
// "" to clear a stale nomination when there is no candidate, or nil to
// keep it.
func (s *Scheduler) preempt(ctx context.Context, pi *podInfo, p preemption) (nominated *string) {
	log := ctrl.LoggerFrom(ctx).WithValues("pod", klog.KObj(pi.pod))
	cand := p.cand
	if cand == nil {
		if p.clearNomination && pi.pod.Status.NominatedNodeName != "" {
			return ptr.To("")
		}
		return nil
	}
	log = log.WithValues("node", cand.node)
	names := make([]string, 0, len(cand.victims))
	for _, v := range cand.victims {
		names = append(names, fmt.Sprintf("%s (priority %d)", v.key, v.priority))
	}
	log.V(2).Info("Preempting pods", "victims", names, "pdbViolations", cand.pdbViolations)
	s.recorder.Eventf(pi.pod, nil, corev1.EventTypeNormal, "Preempting", "Preempting",
		"Preempting %d pod(s) of lower priority on node %s to make room: %s", len(cand.victims), cand.node, strings.Join(names, ", "))
	// The victims go in parallel, as upstream's prepareCandidate: each is
	// two API round trips, and the scheduling goroutine waits for them.
	var g errgroup.Group
	g.SetLimit(victimWorkers)
	for _, v := range cand.victims {
		if v.pod.DeletionTimestamp != nil {
			continue // already going
		}
		g.Go(func() error {
			if err := s.preemptVictim(ctx, pi, v, cand.node); err != nil {
				log.Error(err, "Preempting a victim failed", "victim", klog.KObj(v.pod))
			}
			return nil
		})
	}
	_ = g.Wait() // failures are logged: the preemptor's next cycle sees what stayed
	for _, n := range p.lowerNominated {
		s.clearNomination(ctx, n.pod)
	}
	return ptr.To(cand.node)
}

// clearNomination clears the status.nominatedNodeName of a pending pod
// other than the one being scheduled (a lower-priority pod nominated to
// the node a preemption takes).
func (s *Scheduler) clearNomination(ctx context.Context, pod *corev1alpha1.Pod) {
	err := s.patchStatus(ctx, pod.DeepCopy(), func(p *corev1alpha1.Pod) {
		if p.Spec.NodeName == "" {
			p.Status.NominatedNodeName = ""
		}
	})
	if err != nil && !apierrors.IsNotFound(err) {
		ctrl.LoggerFrom(ctx).Error(err, "Clearing the nominated node failed", "pod", klog.KObj(pod))
	}
}

// preemptVictim marks a victim with DisruptionTarget (reason
// PreemptionByScheduler, as upstream, so Jobs' pod failure policies and
// the preemptor's next cycle can tell why it goes), deletes it and records
// a Preempted event on it.
func (s *Scheduler) preemptVictim(ctx context.Context, pi, v *podInfo, node string) error {
	err := s.patchStatus(ctx, v.pod.DeepCopy(), func(p *corev1alpha1.Pod) {
		podutil.SetDisruptionTarget(p, corev1.PodReasonPreemptionByScheduler,
			fmt.Sprintf("%s: preempting to accommodate a higher priority pod", Name))
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	uid := v.pod.UID
	if err := s.client.Delete(ctx, v.pod, client.Preconditions{UID: &uid}); err != nil {
		return client.IgnoreNotFound(err)
	}
	s.recorder.Eventf(v.pod, pi.pod, corev1.EventTypeNormal, "Preempted", "Preempting",
		"Preempted by %s (priority %d) on node %s", pi.key, pi.priority, node)
	return nil
}
