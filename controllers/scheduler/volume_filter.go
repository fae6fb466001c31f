package scheduler

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/volume"
)

// reasonVolumeBindConflict is upstream's VolumeBinding reason for a node
// where an unbound WaitForFirstConsumer claim can neither bind to an
// existing volume nor be provisioned.
const reasonVolumeBindConflict = "node(s) didn't find available persistent volumes to bind"

// claimPlacement is where an unbound WaitForFirstConsumer claim can get a
// volume: nowhere (none), anywhere (nodes nil), or on the nodes the
// selector admits.
type claimPlacement struct {
	none  bool
	nodes *corev1.NodeSelector
}

// claimPlacement works out, outside the cache lock, where an unbound
// WaitForFirstConsumer claim can get its volume, as upstream's
// VolumeBinding plugin does in FindPodVolumes:
//
//   - a claim whose provisioning already started on a node
//     (volume.kubernetes.io/selected-node) stays on that node;
//   - a claim of a provisioning class (skiff.dev/local-path) can be
//     provisioned on the nodes of the class's allowedTopologies;
//   - a claim of kubernetes.io/no-provisioner can go only where one of the
//     Available volumes that match it may be used.
func (s *Scheduler) claimPlacement(ctx context.Context, pvc *corev1alpha1.PersistentVolumeClaim) claimPlacement {
	if node := pvc.Annotations[volume.AnnSelectedNode]; node != "" {
		return claimPlacement{nodes: nodeNameSelector(node)}
	}
	sc := &storagev1alpha1.StorageClass{}
	if err := s.client.Get(ctx, types.NamespacedName{Name: volume.ClaimClass(pvc)}, sc); err != nil {
		return claimPlacement{none: true}
	}
	if sc.Provisioner != storagev1alpha1.ProvisionerNone {
		return claimPlacement{nodes: topologySelector(sc.AllowedTopologies)}
	}
	pvs := &corev1alpha1.PersistentVolumeList{}
	if err := s.client.List(ctx, pvs); err != nil {
		return claimPlacement{none: true}
	}
	var terms []corev1.NodeSelectorTerm
	found := false
	for i := range pvs.Items {
		pv := pvs.Items[i : i+1]
		if m, _ := volume.FindMatchingVolume(pvc, pv, nil, false); m == nil {
			continue
		}
		found = true
		na := pv[0].Spec.NodeAffinity
		if na == nil || na.Required == nil {
			return claimPlacement{} // this volume may be used anywhere
		}
		terms = append(terms, na.Required.NodeSelectorTerms...)
	}
	if !found {
		return claimPlacement{none: true}
	}
	return claimPlacement{nodes: &corev1.NodeSelector{NodeSelectorTerms: terms}}
}

// compilePlacements turns the placements into matchers for the cycle; a
// selector that does not compile matches no node.
func compilePlacements(ps []claimPlacement) []*nodeaffinity.NodeSelector {
	var out []*nodeaffinity.NodeSelector
	for _, p := range ps {
		if p.nodes == nil && !p.none {
			continue
		}
		ns := p.nodes
		if p.none {
			ns = &corev1.NodeSelector{}
		}
		sel, err := nodeaffinity.NewNodeSelector(ns)
		if err != nil {
			sel, _ = nodeaffinity.NewNodeSelector(&corev1.NodeSelector{})
		}
		out = append(out, sel)
	}
	return out
}

// filterUnboundClaims is the part of upstream's VolumeBinding filter for
// unbound WaitForFirstConsumer claims: the node must be one where each
// claim can bind or be provisioned.
func filterUnboundClaims(cs *cycleState, ni *nodeInfo) ([]string, bool) {
	for _, sel := range cs.unboundClaims {
		if ni.core == nil || !sel.Match(ni.core) {
			return []string{reasonVolumeBindConflict}, true
		}
	}
	return nil, false
}

// nodeNameSelector admits the named node only.
func nodeNameSelector(name string) *corev1.NodeSelector {
	return &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{name}}},
	}}}
}

// topologySelector is a class's allowedTopologies as a node selector: nil
// (every node) when there are none.
func topologySelector(terms []corev1.TopologySelectorTerm) *corev1.NodeSelector {
	if len(terms) == 0 {
		return nil
	}
	ns := &corev1.NodeSelector{}
	for _, t := range terms {
		var term corev1.NodeSelectorTerm
		for _, e := range t.MatchLabelExpressions {
			term.MatchExpressions = append(term.MatchExpressions, corev1.NodeSelectorRequirement{Key: e.Key, Operator: corev1.NodeSelectorOpIn, Values: e.Values})
		}
		ns.NodeSelectorTerms = append(ns.NodeSelectorTerms, term)
	}
	return ns
}
