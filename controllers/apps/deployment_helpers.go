package apps

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
)

// Labels and annotations of Deployments and their ReplicaSets, as upstream.
const (
	// LabelPodTemplateHash tells a Deployment's ReplicaSets and their pods apart.
	LabelPodTemplateHash = appsv1.DefaultDeploymentUniqueLabelKey
	// AnnotationRevisionHistory lists the earlier revisions a ReplicaSet had.
	AnnotationRevisionHistory = "deployment.kubernetes.io/revision-history"
	// AnnotationDesiredReplicas is the Deployment's replicas when the ReplicaSet was last scaled.
	AnnotationDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	// AnnotationMaxReplicas is replicas + maxSurge when the ReplicaSet was last scaled.
	AnnotationMaxReplicas = "deployment.kubernetes.io/max-replicas"
	// annotationLastApplied is kubectl's; never copied to ReplicaSets.
	annotationLastApplied = "kubectl.kubernetes.io/last-applied-configuration"
	// revisionHistoryMaxChars bounds the revision-history annotation, as upstream.
	revisionHistoryMaxChars = 2000
)

// Upstream defaults of apps/v1 Deployment fields the CRD leaves unset.
const (
	defaultRevisionHistoryLimit    = 10
	defaultProgressDeadlineSeconds = 600
)

var defaultMaxSurgeOrUnavailable = intstr.FromString("25%")

// annotationsNotCopied are the Deployment annotations that never go to its
// ReplicaSets (nor come back on rollback).
var annotationsNotCopied = map[string]bool{
	annotationLastApplied:               true,
	appsv1alpha1.AnnotationRevision:     true,
	AnnotationRevisionHistory:           true,
	AnnotationDesiredReplicas:           true,
	AnnotationMaxReplicas:               true,
	appsv1alpha1.AnnotationRollbackTo:   true,
	"deprecated.deployment.rollback.to": true,
}

func isRollingUpdate(d *appsv1alpha1.Deployment) bool {
	return d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType
}

func deploymentReplicas(d *appsv1alpha1.Deployment) int32 { return derefInt32(d.Spec.Replicas, 1) }

// resolveFenceposts turns maxSurge and maxUnavailable into numbers for
// desired replicas: surge rounds up, unavailable rounds down, and both zero
// means one unavailable, as upstream.
func resolveFenceposts(maxSurge, maxUnavailable *intstr.IntOrString, desired int32) (int32, int32, error) {
	if maxSurge == nil {
		maxSurge = &defaultMaxSurgeOrUnavailable
	}
	if maxUnavailable == nil {
		maxUnavailable = &defaultMaxSurgeOrUnavailable
	}
	surge, err := intstr.GetScaledValueFromIntOrPercent(maxSurge, int(desired), true)
	if err != nil {
		return 0, 0, fmt.Errorf("maxSurge: %w", err)
	}
	unavailable, err := intstr.GetScaledValueFromIntOrPercent(maxUnavailable, int(desired), false)
	if err != nil {
		return 0, 0, fmt.Errorf("maxUnavailable: %w", err)
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return int32(surge), int32(unavailable), nil
}

func rollingParams(d *appsv1alpha1.Deployment) (*intstr.IntOrString, *intstr.IntOrString) {
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		return ru.MaxSurge, ru.MaxUnavailable
	}
	return nil, nil
}

// maxSurge is the number of pods a rolling update may run above replicas.
func maxSurge(d *appsv1alpha1.Deployment) int32 {
	if !isRollingUpdate(d) {
		return 0
	}
	s, u := rollingParams(d)
	surge, _, _ := resolveFenceposts(s, u, deploymentReplicas(d))
	return surge
}

// maxUnavailable is the number of pods a rolling update may have unavailable.
func maxUnavailable(d *appsv1alpha1.Deployment) int32 {
	replicas := deploymentReplicas(d)
	if !isRollingUpdate(d) || replicas == 0 {
		return 0
	}
	s, u := rollingParams(d)
	_, unavailable, _ := resolveFenceposts(s, u, replicas)
	return min(unavailable, replicas)
}

// specReplicas sums the spec.replicas of rss.
func specReplicas(rss []*appsv1alpha1.ReplicaSet) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += derefInt32(rs.Spec.Replicas, 1)
		}
	}
	return n
}

func statusReplicas(rss []*appsv1alpha1.ReplicaSet, field func(*appsv1alpha1.ReplicaSetStatus) int32) int32 {
	var n int32
	for _, rs := range rss {
		if rs != nil {
			n += field(&rs.Status)
		}
	}
	return n
}

// activeReplicaSets drops nil ones and those scaled to zero.
func activeReplicaSets(rss []*appsv1alpha1.ReplicaSet) []*appsv1alpha1.ReplicaSet {
	var out []*appsv1alpha1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && derefInt32(rs.Spec.Replicas, 1) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// newRSReplicas is the size the new ReplicaSet should have in this step of
// a rollout, as upstream's NewRSNewReplicas.
func newRSReplicas(d *appsv1alpha1.Deployment, all []*appsv1alpha1.ReplicaSet, newRS *appsv1alpha1.ReplicaSet) int32 {
	replicas := deploymentReplicas(d)
	if !isRollingUpdate(d) {
		return replicas
	}
	// A ReplicaSet just scaled down still runs its pods until its
	// controller has deleted them: count what it runs, not only its spec,
	// so the pods never exceed replicas+maxSurge, even for a moment.
	var current int32
	for _, rs := range all {
		if rs != nil {
			current += max(derefInt32(rs.Spec.Replicas, 1), rs.Status.Replicas)
		}
	}
	maxTotal := replicas + maxSurge(d)
	newSize := derefInt32(newRS.Spec.Replicas, 1)
	if current >= maxTotal {
		return newSize
	}
	return newSize + min(maxTotal-current, replicas-newSize)
}

// maxOldScaleDown is how many old pods a rolling update may remove now, as
// upstream's reconcileOldReplicaSets: never below replicas-maxUnavailable
// available, counting the new ReplicaSet's unavailable pods against it.
func maxOldScaleDown(d *appsv1alpha1.Deployment, all []*appsv1alpha1.ReplicaSet, newRS *appsv1alpha1.ReplicaSet) int32 {
	minAvailable := deploymentReplicas(d) - maxUnavailable(d)
	newUnavailable := derefInt32(newRS.Spec.Replicas, 1) - newRS.Status.AvailableReplicas
	return specReplicas(all) - minAvailable - newUnavailable
}

// settledAvailable is the ReplicaSet's available pods once it has acted on
// its spec: a ReplicaSet just scaled down still reports the pods it is about
// to delete, and it deletes unavailable pods first, so no more than
// spec.replicas of them stay available. Counting the reported figure would
// let a rolling update dip below replicas-maxUnavailable.
func settledAvailable(rs *appsv1alpha1.ReplicaSet) int32 {
	if rs == nil {
		return 0
	}
	return min(rs.Status.AvailableReplicas, derefInt32(rs.Spec.Replicas, 1))
}

// cleanupUnhealthyPlan returns the new sizes of old ReplicaSets after
// removing up to maxCleanup of their unavailable pods, oldest first.
func cleanupUnhealthyPlan(old []*appsv1alpha1.ReplicaSet, maxCleanup int32) map[string]int32 {
	sorted := byCreation(old)
	plan := map[string]int32{}
	var total int32
	for _, rs := range sorted {
		size := derefInt32(rs.Spec.Replicas, 1)
		if total >= maxCleanup {
			break
		}
		if size == 0 {
			continue
		}
		unhealthy := size - settledAvailable(rs)
		if unhealthy <= 0 {
			continue
		}
		n := min(maxCleanup-total, unhealthy)
		plan[rs.Name] = size - n
		total += n
	}
	return plan
}

// scaleDownOldPlan returns the new sizes of old ReplicaSets after removing
// available pods beyond replicas-maxUnavailable, oldest first, as upstream's
// scaleDownOldReplicaSetsForRollingUpdate.
func scaleDownOldPlan(d *appsv1alpha1.Deployment, all, old []*appsv1alpha1.ReplicaSet) map[string]int32 {
	minAvailable := deploymentReplicas(d) - maxUnavailable(d)
	var available int32
	for _, rs := range all {
		available += settledAvailable(rs)
	}
	plan := map[string]int32{}
	if available <= minAvailable {
		return plan
	}
	want := available - minAvailable
	var total int32
	for _, rs := range byCreation(old) {
		if total >= want {
			break
		}
		size := derefInt32(rs.Spec.Replicas, 1)
		if size == 0 {
			continue
		}
		n := min(size, want-total)
		plan[rs.Name] = size - n
		total += n
	}
	return plan
}

func byCreation(rss []*appsv1alpha1.ReplicaSet) []*appsv1alpha1.ReplicaSet {
	out := append([]*appsv1alpha1.ReplicaSet(nil), rss...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].CreationTimestamp, out[j].CreationTimestamp
		if a.Equal(&b) {
			return out[i].Name < out[j].Name
		}
		return a.Before(&b)
	})
	return out
}

// proportionalPlan returns the sizes of the active ReplicaSets when a
// Deployment is scaled mid-rollout, as upstream's scale: the replicas to
// add or remove are shared in proportion to each ReplicaSet's size (from its
// max-replicas annotation), bigger ones first, and the rounding leftover
// goes to the first.
func proportionalPlan(d *appsv1alpha1.Deployment, active []*appsv1alpha1.ReplicaSet) map[string]int32 {
	replicas := deploymentReplicas(d)
	var allowed int32
	if replicas > 0 {
		allowed = replicas + maxSurge(d)
	}
	toAdd := allowed - specReplicas(active)
	sorted := append([]*appsv1alpha1.ReplicaSet(nil), active...)
	sort.SliceStable(sorted, func(i, j int) bool {
		si, sj := derefInt32(sorted[i].Spec.Replicas, 1), derefInt32(sorted[j].Spec.Replicas, 1)
		if si != sj {
			return si > sj
		}
		ti, tj := sorted[i].CreationTimestamp, sorted[j].CreationTimestamp
		if toAdd > 0 {
			return tj.Before(&ti) // newer first when scaling up
		}
		return ti.Before(&tj) // older first when scaling down
	})
	plan := map[string]int32{}
	var added int32
	for _, rs := range sorted {
		size := derefInt32(rs.Spec.Replicas, 1)
		p := proportion(d, rs, toAdd, added)
		plan[rs.Name] = size + p
		added += p
	}
	if toAdd != 0 && len(sorted) > 0 {
		first := sorted[0].Name
		plan[first] = max(plan[first]+toAdd-added, 0)
	}
	return plan
}

func proportion(d *appsv1alpha1.Deployment, rs *appsv1alpha1.ReplicaSet, toAdd, added int32) int32 {
	size := derefInt32(rs.Spec.Replicas, 1)
	if size == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	fraction := replicaSetFraction(d, rs)
	allowed := toAdd - added
	if toAdd > 0 {
		return min(fraction, allowed)
	}
	return max(fraction, allowed)
}

func replicaSetFraction(d *appsv1alpha1.Deployment, rs *appsv1alpha1.ReplicaSet) int32 {
	size := derefInt32(rs.Spec.Replicas, 1)
	replicas := deploymentReplicas(d)
	if replicas == 0 {
		return -size
	}
	target := replicas + maxSurge(d)
	annotated, ok := intAnnotation(rs, AnnotationMaxReplicas)
	if !ok || annotated == 0 {
		annotated = d.Status.Replicas
	}
	if annotated == 0 {
		return 0
	}
	return int32(math.Round(float64(size)*float64(target)/float64(annotated))) - size
}

func intAnnotation(obj metav1.Object, key string) (int32, bool) {
	v, ok := obj.GetAnnotations()[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// revision returns the revision annotation of obj, 0 when absent or invalid.
func revision(obj metav1.Object) int64 {
	n, err := strconv.ParseInt(obj.GetAnnotations()[appsv1alpha1.AnnotationRevision], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func maxRevision(rss []*appsv1alpha1.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, revision(rs))
	}
	return m
}

// previousRevision is the second highest revision, the target of a rollback to 0.
func previousRevision(rss []*appsv1alpha1.ReplicaSet) int64 {
	var first, second int64
	for _, rs := range rss {
		switch v := revision(rs); {
		case v >= first:
			if v != first {
				second = first
			}
			first = v
		case v > second:
			second = v
		}
	}
	return second
}

// templateHash is the pod-template-hash of a template and collision count:
// a stable hash of the template, salted by the count so that a collision
// with a foreign ReplicaSet's name yields a new name.
func templateHash(t *corev1.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	raw, _ := json.Marshal(t)
	_, _ = h.Write(raw)
	if collisionCount != nil {
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(*collisionCount))
		_, _ = h.Write(b[:])
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// equalIgnoreHash compares templates, ignoring the pod-template-hash label.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, LabelPodTemplateHash)
	delete(b.Labels, LabelPodTemplateHash)
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(b.Labels) == 0 {
		b.Labels = nil
	}
	return equality.Semantic.DeepEqual(a, b)
}

// findNewReplicaSet returns the ReplicaSet whose template is the
// Deployment's (the oldest when several are), and the others.
func findNewReplicaSet(d *appsv1alpha1.Deployment, rss []*appsv1alpha1.ReplicaSet) (*appsv1alpha1.ReplicaSet, []*appsv1alpha1.ReplicaSet) {
	var newRS *appsv1alpha1.ReplicaSet
	var old []*appsv1alpha1.ReplicaSet
	for _, rs := range byCreation(rss) {
		if newRS == nil && equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
	}
	return newRS, old
}

// setReplicasAnnotations records desired and max replicas on rs; it
// reports whether they changed.
func setReplicasAnnotations(rs *appsv1alpha1.ReplicaSet, desired, maxReplicas int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	d, m := strconv.Itoa(int(desired)), strconv.Itoa(int(maxReplicas))
	if rs.Annotations[AnnotationDesiredReplicas] == d && rs.Annotations[AnnotationMaxReplicas] == m {
		return false
	}
	rs.Annotations[AnnotationDesiredReplicas] = d
	rs.Annotations[AnnotationMaxReplicas] = m
	return true
}

// setNewReplicaSetAnnotations copies the Deployment's annotations to the
// new ReplicaSet and moves it to newRevision, keeping the revisions it had
// in the revision-history annotation, as upstream; it reports a change.
func setNewReplicaSetAnnotations(d *appsv1alpha1.Deployment, rs *appsv1alpha1.ReplicaSet, newRevision int64, exists bool) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	changed := false
	for k, v := range d.Annotations {
		if annotationsNotCopied[k] || rs.Annotations[k] == v {
			continue
		}
		rs.Annotations[k] = v
		changed = true
	}
	oldRevision := rs.Annotations[appsv1alpha1.AnnotationRevision]
	oldInt := revision(rs)
	if oldInt < newRevision {
		rs.Annotations[appsv1alpha1.AnnotationRevision] = strconv.FormatInt(newRevision, 10)
		changed = true
		if oldRevision != "" {
			history := rs.Annotations[AnnotationRevisionHistory]
			var list []string
			if history != "" {
				list = strings.Split(history, ",")
			}
			list = append(list, oldRevision)
			for len(strings.Join(list, ",")) > revisionHistoryMaxChars && len(list) > 1 {
				list = list[1:]
			}
			rs.Annotations[AnnotationRevisionHistory] = strings.Join(list, ",")
		}
	}
	if !exists && setReplicasAnnotations(rs, deploymentReplicas(d), deploymentReplicas(d)+maxSurge(d)) {
		changed = true
	}
	return changed
}

// isScalingEvent tells whether the Deployment's replicas differ from the
// desired-replicas annotation of one of its active ReplicaSets.
func isScalingEvent(d *appsv1alpha1.Deployment, rss []*appsv1alpha1.ReplicaSet) bool {
	for _, rs := range activeReplicaSets(rss) {
		if desired, ok := intAnnotation(rs, AnnotationDesiredReplicas); ok && desired != deploymentReplicas(d) {
			return true
		}
	}
	return false
}

// activeOrLatest returns the only active ReplicaSet, or the newest when
// none is active, or nil when several are active.
func activeOrLatest(newRS *appsv1alpha1.ReplicaSet, old []*appsv1alpha1.ReplicaSet) *appsv1alpha1.ReplicaSet {
	if newRS == nil && len(old) == 0 {
		return nil
	}
	all := append([]*appsv1alpha1.ReplicaSet{newRS}, old...)
	active := activeReplicaSets(all)
	switch len(active) {
	case 0:
		if newRS != nil {
			return newRS
		}
		sorted := byCreation(old)
		return sorted[len(sorted)-1]
	case 1:
		return active[0]
	}
	return nil
}

// isSaturated tells whether rs runs the whole Deployment, all available.
func isSaturated(d *appsv1alpha1.Deployment, rs *appsv1alpha1.ReplicaSet) bool {
	if rs == nil {
		return false
	}
	desired, ok := intAnnotation(rs, AnnotationDesiredReplicas)
	replicas := deploymentReplicas(d)
	return ok && desired == replicas && derefInt32(rs.Spec.Replicas, 1) == replicas && rs.Status.AvailableReplicas == replicas
}

func hasProgressDeadline(d *appsv1alpha1.Deployment) bool {
	return d.Spec.ProgressDeadlineSeconds == nil || *d.Spec.ProgressDeadlineSeconds != math.MaxInt32
}

func progressDeadline(d *appsv1alpha1.Deployment) time.Duration {
	return time.Duration(derefInt32(d.Spec.ProgressDeadlineSeconds, defaultProgressDeadlineSeconds)) * time.Second
}

// deploymentComplete: every replica updated and available, nothing older left.
func deploymentComplete(d *appsv1alpha1.Deployment, st *appsv1alpha1.DeploymentStatus) bool {
	r := deploymentReplicas(d)
	return st.UpdatedReplicas == r && st.Replicas == r && st.AvailableReplicas == r && st.ObservedGeneration >= d.Generation
}

// deploymentProgressing compares the new status with the stored one.
func deploymentProgressing(d *appsv1alpha1.Deployment, st *appsv1alpha1.DeploymentStatus) bool {
	old := d.Status
	return st.UpdatedReplicas > old.UpdatedReplicas ||
		st.Replicas-st.UpdatedReplicas < old.Replicas-old.UpdatedReplicas ||
		st.ReadyReplicas > old.ReadyReplicas ||
		st.AvailableReplicas > old.AvailableReplicas
}

// deploymentTimedOut tells whether the Progressing condition of st has not
// been refreshed for progressDeadlineSeconds. skiff's Progressing condition
// refreshes lastTransitionTime on every progress, standing in for
// upstream's lastUpdateTime.
func deploymentTimedOut(d *appsv1alpha1.Deployment, st *appsv1alpha1.DeploymentStatus, now time.Time) bool {
	if !hasProgressDeadline(d) {
		return false
	}
	c := meta.FindStatusCondition(st.Conditions, appsv1alpha1.DeploymentProgressing)
	if c == nil {
		return false
	}
	switch c.Reason {
	case appsv1alpha1.ReasonNewReplicaSetAvailable:
		return false
	case appsv1alpha1.ReasonProgressDeadlineExceeded:
		return true
	}
	return c.LastTransitionTime.Add(progressDeadline(d)).Before(now)
}

// setCondition sets c unless a condition of its type with the same status
// and reason exists (then nothing changes, as upstream's
// SetDeploymentCondition); a set condition gets lastTransitionTime now.
func setCondition(conds *[]metav1.Condition, c metav1.Condition, now time.Time) {
	if cur := meta.FindStatusCondition(*conds, c.Type); cur != nil && cur.Status == c.Status && cur.Reason == c.Reason {
		return
	}
	refreshCondition(conds, c, now)
}

// refreshCondition replaces the condition of c's type, lastTransitionTime now.
func refreshCondition(conds *[]metav1.Condition, c metav1.Condition, now time.Time) {
	meta.RemoveStatusCondition(conds, c.Type)
	c.LastTransitionTime = metav1.NewTime(now)
	*conds = append(*conds, c)
}
