package apps

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/podcontrol"
	"github.com/skiff-dev/skiff/internal/podutil"
)

// Labels of StatefulSet pods, as upstream.
const (
	LabelStatefulSetPodName = appsv1.StatefulSetPodNameLabel
	LabelPodIndex           = appsv1.PodIndexLabel
)

var statefulPodName = regexp.MustCompile(`^(.*)-([0-9]+)$`)

// parentAndOrdinal splits "<set>-<ordinal>"; ordinal is -1 when the name has none.
func parentAndOrdinal(name string) (string, int) {
	m := statefulPodName.FindStringSubmatch(name)
	if m == nil {
		return "", -1
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return "", -1
	}
	return m[1], n
}

func startOrdinal(set *appsv1alpha1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

func setReplicas(set *appsv1alpha1.StatefulSet) int { return int(derefInt32(set.Spec.Replicas, 1)) }

// isMemberOf tells whether pod is named as a pod of set.
func isMemberOf(set *appsv1alpha1.StatefulSet, pod *corev1alpha1.Pod) bool {
	parent, ord := parentAndOrdinal(pod.Name)
	return parent == set.Name && ord >= 0
}

func inOrdinalRange(set *appsv1alpha1.StatefulSet, ord int) bool {
	return ord >= startOrdinal(set) && ord < startOrdinal(set)+setReplicas(set)
}

// claimName is "<template>-<set>-<ordinal>", as upstream.
func claimName(set *appsv1alpha1.StatefulSet, claim *corev1.PersistentVolumeClaim, ord int) string {
	return fmt.Sprintf("%s-%s-%d", claim.Name, set.Name, ord)
}

// newStatefulPod builds pod <set>-<ord> from template: identity (hostname,
// subdomain from serviceName, the pod-name and pod-index labels), the
// claim volumes of volumeClaimTemplates, and the revision label.
func newStatefulPod(set *appsv1alpha1.StatefulSet, template *corev1.PodTemplateSpec, ord int, revisionName string) *corev1alpha1.Pod {
	pod := podcontrol.NewPodFromTemplate(template, set, podcontrol.ControllerRef(set, statefulSetGVK))
	pod.GenerateName = ""
	pod.Name = fmt.Sprintf("%s-%d", set.Name, ord)
	setStatefulIdentity(set, pod, ord)
	setStatefulStorage(set, pod, ord)
	pod.Labels[appsv1.ControllerRevisionHashLabelKey] = revisionName
	return pod
}

func setStatefulIdentity(set *appsv1alpha1.StatefulSet, pod *corev1alpha1.Pod, ord int) {
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[LabelStatefulSetPodName] = pod.Name
	pod.Labels[LabelPodIndex] = strconv.Itoa(ord)
}

func setStatefulStorage(set *appsv1alpha1.StatefulSet, pod *corev1alpha1.Pod, ord int) {
	if len(set.Spec.VolumeClaimTemplates) == 0 {
		return
	}
	claims := map[string]string{}
	for i := range set.Spec.VolumeClaimTemplates {
		c := &set.Spec.VolumeClaimTemplates[i]
		claims[c.Name] = claimName(set, c, ord)
	}
	var volumes []corev1.Volume
	for _, v := range pod.Spec.Volumes {
		if _, ok := claims[v.Name]; !ok {
			volumes = append(volumes, v)
		}
	}
	for i := range set.Spec.VolumeClaimTemplates {
		c := &set.Spec.VolumeClaimTemplates[i]
		volumes = append(volumes, corev1.Volume{Name: c.Name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claims[c.Name]}}})
	}
	pod.Spec.Volumes = volumes
}

// identityMatches tells whether pod carries the labels of its ordinal.
func identityMatches(set *appsv1alpha1.StatefulSet, pod *corev1alpha1.Pod) bool {
	_, ord := parentAndOrdinal(pod.Name)
	return pod.Namespace == set.Namespace && pod.Labels[LabelStatefulSetPodName] == pod.Name && pod.Labels[LabelPodIndex] == strconv.Itoa(ord)
}

// newClaim is the PersistentVolumeClaim of template for ordinal ord,
// labelled with the set's selector labels, as upstream.
func newClaim(set *appsv1alpha1.StatefulSet, template *corev1.PersistentVolumeClaim, ord int) *corev1alpha1.PersistentVolumeClaim {
	lbls := copyLabels(template.Labels)
	if set.Spec.Selector != nil {
		for k, v := range set.Spec.Selector.MatchLabels {
			lbls[k] = v
		}
	}
	return &corev1alpha1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name:        claimName(set, template, ord),
			Namespace:   set.Namespace,
			Labels:      lbls,
			Annotations: copyMap(template.Annotations),
		},
		Spec: *template.Spec.DeepCopy(),
	}
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return copyLabels(m)
}

// claimOwners returns the non-controller owners a claim of a pod should
// have under persistentVolumeClaimRetentionPolicy, as upstream: the set
// when whenDeleted is Delete (and the pod is in range or whenScaled is
// Retain); the pod when whenScaled is Delete and the pod is scaled away.
func claimOwners(set *appsv1alpha1.StatefulSet, podInRange bool) (ownedBySet, ownedByPod bool) {
	whenDeleted, whenScaled := appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		if p.WhenDeleted != "" {
			whenDeleted = p.WhenDeleted
		}
		if p.WhenScaled != "" {
			whenScaled = p.WhenScaled
		}
	}
	del := appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	switch {
	case whenScaled != del && whenDeleted == del:
		return true, false
	case whenScaled == del && whenDeleted != del:
		return false, !podInRange
	case whenScaled == del && whenDeleted == del:
		return podInRange, !podInRange
	}
	return false, false
}

// setOwnerRefs adds or removes the non-controller reference to owner; it
// reports a change.
func setOwnerRef(obj metav1.Object, owner metav1.Object, apiVersion, kind string, want bool) bool {
	refs := obj.GetOwnerReferences()
	idx := -1
	for i, r := range refs {
		if r.UID == owner.GetUID() {
			idx = i
		}
	}
	switch {
	case want && idx < 0:
		obj.SetOwnerReferences(append(refs, metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: owner.GetName(), UID: owner.GetUID()}))
		return true
	case !want && idx >= 0:
		obj.SetOwnerReferences(append(refs[:idx:idx], refs[idx+1:]...))
		return true
	}
	return false
}

// useCurrentRevision tells whether a pod created now at ordinal ord gets
// the current revision (below the partition of a rolling update) rather
// than the update revision, as upstream's newVersionedStatefulSetPod.
func useCurrentRevision(set *appsv1alpha1.StatefulSet, ord int) bool {
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return false
	}
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil {
		return ord < startOrdinal(set)+int(set.Status.CurrentReplicas)
	}
	return ord < startOrdinal(set)+int(derefInt32(ru.Partition, 0))
}

func isRunningAndReady(p *corev1alpha1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && podutil.IsReady(p)
}

func isCreated(p *corev1alpha1.Pod) bool { return p.Status.Phase != "" || p.UID != "" }

// statefulUnavailable: not running, ready and available, or terminating.
func statefulUnavailable(p *corev1alpha1.Pod, minReadySeconds int32, now time.Time) bool {
	return !isRunningAndReady(p) || p.DeletionTimestamp != nil || !podutil.IsAvailable(p, minReadySeconds, now)
}

// statefulMaxUnavailable is maxUnavailable as a number (rounded down, at least 1).
func statefulMaxUnavailable(set *appsv1alpha1.StatefulSet) int {
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if ru == nil || ru.MaxUnavailable == nil {
		return 1
	}
	n, err := intstr.GetScaledValueFromIntOrPercent(ru.MaxUnavailable, setReplicas(set), false)
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// statefulUpdateVictims returns the pods to delete for a rolling update:
// from the highest ordinal down to the partition, pods not at the update
// revision, no more than maxUnavailable minus the unavailable pods, as
// upstream with MaxUnavailableStatefulSet.
func statefulUpdateVictims(set *appsv1alpha1.StatefulSet, replicas []*corev1alpha1.Pod, updateRevision string, now time.Time) []*corev1alpha1.Pod {
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return nil
	}
	partition := 0
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil {
		partition = int(derefInt32(ru.Partition, 0))
	}
	unavailable := 0
	for _, p := range replicas {
		if statefulUnavailable(p, set.Spec.MinReadySeconds, now) {
			unavailable++
		}
	}
	budget := statefulMaxUnavailable(set) - unavailable
	var out []*corev1alpha1.Pod
	for i := len(replicas) - 1; i >= partition && len(out) < budget; i-- {
		p := replicas[i]
		if p.Labels[appsv1.ControllerRevisionHashLabelKey] != updateRevision && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

// statefulSetStatus computes the counters as upstream's computeReplicaStatus
// and completes a finished rolling update.
func statefulSetStatus(set *appsv1alpha1.StatefulSet, pods []*corev1alpha1.Pod, currentRevision, updateRevision string, collisionCount int32, now time.Time) appsv1alpha1.StatefulSetStatus {
	st := *set.Status.DeepCopy()
	st.ObservedGeneration = set.Generation
	st.CurrentRevision, st.UpdateRevision = currentRevision, updateRevision
	st.CollisionCount = int32Ptr(collisionCount)
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas, st.CurrentReplicas, st.UpdatedReplicas = 0, 0, 0, 0, 0
	for _, p := range pods {
		if !isCreated(p) {
			continue
		}
		st.Replicas++
		if isRunningAndReady(p) {
			st.ReadyReplicas++
			if podutil.IsAvailable(p, set.Spec.MinReadySeconds, now) {
				st.AvailableReplicas++
			}
		}
		if p.DeletionTimestamp == nil {
			switch p.Labels[appsv1.ControllerRevisionHashLabelKey] {
			case currentRevision:
				st.CurrentReplicas++
			}
			if p.Labels[appsv1.ControllerRevisionHashLabelKey] == updateRevision {
				st.UpdatedReplicas++
			}
		}
	}
	// A rolling update is complete once every pod is updated and ready.
	if set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType && st.UpdatedReplicas == st.Replicas && st.ReadyReplicas == st.Replicas {
		st.CurrentReplicas = st.UpdatedReplicas
		st.CurrentRevision = st.UpdateRevision
	}
	if sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector); err == nil {
		st.Selector = sel.String()
	}
	replicas := int32(setReplicas(set))
	st.Ready = readyString(st.ReadyReplicas, replicas)

	wantUpdated := replicas
	if ru := set.Spec.UpdateStrategy.RollingUpdate; ru != nil && set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType {
		wantUpdated = max(replicas-derefInt32(ru.Partition, 0), 0)
	}
	if set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		wantUpdated = 0
	}
	s := summary{
		ready:   st.Replicas == replicas && st.ReadyReplicas == replicas && st.AvailableReplicas == replicas && st.UpdatedReplicas >= wantUpdated,
		message: fmt.Sprintf("%d of %d replicas ready, %d updated", st.ReadyReplicas, replicas, st.UpdatedReplicas),
	}
	setSummary(&st.Conditions, set.Generation, s)
	return st
}
