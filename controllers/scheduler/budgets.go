package scheduler

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	policyv1alpha1 "github.com/skiff-dev/skiff/api/policy/v1alpha1"
)

// budgetInfo is what preemption reads of a PodDisruptionBudget.
type budgetInfo struct {
	namespace string
	// selector is nil when the budget selects nothing: an empty or missing
	// selector, or one that does not parse, as upstream's preemption.
	selector labels.Selector
	allowed  int32
	// disrupted are the pods an eviction was already granted for: they
	// count against the budget already, preempting them is no violation.
	disrupted map[string]struct{}
}

func newBudgetInfo(pdb *policyv1alpha1.PodDisruptionBudget) *budgetInfo {
	b := &budgetInfo{namespace: pdb.Namespace, allowed: pdb.Status.DisruptionsAllowed}
	if sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector); err == nil && pdb.Spec.Selector != nil && !sel.Empty() {
		b.selector = sel
	}
	if len(pdb.Status.DisruptedPods) > 0 {
		b.disrupted = make(map[string]struct{}, len(pdb.Status.DisruptedPods))
		for name := range pdb.Status.DisruptedPods {
			b.disrupted[name] = struct{}{}
		}
	}
	return b
}

// UpsertPDB records or replaces a PodDisruptionBudget, for preemption.
func (c *Cache) UpsertPDB(pdb *policyv1alpha1.PodDisruptionBudget) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.budgets[podKey(pdb.Namespace, pdb.Name)] = newBudgetInfo(pdb)
}

// RemovePDB forgets a PodDisruptionBudget.
func (c *Cache) RemovePDB(namespace, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.budgets, podKey(namespace, name))
}

// budgetsLocked lists the budgets a preemption dry run reads.
func (c *Cache) budgetsLocked() []*budgetInfo {
	out := make([]*budgetInfo, 0, len(c.budgets))
	for _, b := range c.budgets {
		out = append(out, b)
	}
	return out
}

// splitByBudgetViolation is upstream's filterPodsWithPDBViolation: going
// through pods in order, each takes one disruption from every budget that
// selects it (unless the budget already counts it as disrupted); a pod
// that takes a budget below zero violates it. Both groups keep the order
// of pods.
func splitByBudgetViolation(pods []*podInfo, budgets []*budgetInfo) (violating, nonViolating []*podInfo) {
	var allowed []int32
	for _, p := range pods {
		violates := false
		if len(p.pod.Labels) > 0 {
			for i, b := range budgets {
				if b.selector == nil || b.namespace != p.pod.Namespace || !b.selector.Matches(labels.Set(p.pod.Labels)) {
					continue
				}
				if _, ok := b.disrupted[p.pod.Name]; ok {
					continue
				}
				if allowed == nil {
					allowed = make([]int32, len(budgets))
					for j, b := range budgets {
						allowed[j] = b.allowed
					}
				}
				allowed[i]--
				if allowed[i] < 0 {
					violates = true
				}
			}
		}
		if violates {
			violating = append(violating, p)
		} else {
			nonViolating = append(nonViolating, p)
		}
	}
	return violating, nonViolating
}
