package volume

import (
	"fmt"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// ClaimClass is the StorageClass a claim asks for; "" asks for volumes
// without a class.
func ClaimClass(c *corev1alpha1.PersistentVolumeClaim) string {
	if c.Spec.StorageClassName != nil {
		return *c.Spec.StorageClassName
	}
	return ""
}

func requested(c *corev1alpha1.PersistentVolumeClaim) resource.Quantity {
	return c.Spec.Resources.Requests[corev1.ResourceStorage]
}

func capacity(v *corev1alpha1.PersistentVolume) resource.Quantity {
	return v.Spec.Capacity[corev1.ResourceStorage]
}

func volumeMode(m *corev1.PersistentVolumeMode) corev1.PersistentVolumeMode {
	if m == nil {
		return corev1.PersistentVolumeFilesystem
	}
	return *m
}

// IsVolumeBoundToClaim tells whether the volume's claimRef names the claim:
// its namespace and name, and its UID when the claimRef has one (a claimRef
// without a UID is a user's pre-binding to a claim by name).
func IsVolumeBoundToClaim(v *corev1alpha1.PersistentVolume, c *corev1alpha1.PersistentVolumeClaim) bool {
	ref := v.Spec.ClaimRef
	if ref == nil || ref.Name != c.Name || ref.Namespace != c.Namespace {
		return false
	}
	return ref.UID == "" || ref.UID == c.UID
}

// containsModes tells whether have holds every mode of want.
func containsModes(have, want []corev1.PersistentVolumeAccessMode) bool {
	for _, m := range want {
		if !slices.Contains(have, m) {
			return false
		}
	}
	return true
}

// NodeMatches tells whether the volume may be used on the node: a volume
// without node affinity may be used anywhere.
func NodeMatches(v *corev1alpha1.PersistentVolume, node *corev1alpha1.Node) bool {
	if v.Spec.NodeAffinity == nil || v.Spec.NodeAffinity.Required == nil {
		return true
	}
	sel, err := nodeaffinity.NewNodeSelector(v.Spec.NodeAffinity.Required)
	if err != nil {
		return false
	}
	return sel.Match(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: node.Labels}})
}

// CheckVolumeSatisfiesClaim says why a volume the claim names in
// spec.volumeName cannot serve it: capacity, class, volume mode and
// access modes are checked, as upstream's checkVolumeSatisfyClaim.
func CheckVolumeSatisfiesClaim(v *corev1alpha1.PersistentVolume, c *corev1alpha1.PersistentVolumeClaim) error {
	req, have := requested(c), capacity(v)
	if have.Cmp(req) < 0 {
		return fmt.Errorf("requested PV is too small: %s < %s", have.String(), req.String())
	}
	if v.Spec.StorageClassName != ClaimClass(c) {
		return fmt.Errorf("storageClassName does not match: volume has %q, claim asks for %q", v.Spec.StorageClassName, ClaimClass(c))
	}
	if volumeMode(v.Spec.VolumeMode) != volumeMode(c.Spec.VolumeMode) {
		return fmt.Errorf("incompatible volumeMode: volume has %s, claim asks for %s", volumeMode(v.Spec.VolumeMode), volumeMode(c.Spec.VolumeMode))
	}
	if !containsModes(v.Spec.AccessModes, c.Spec.AccessModes) {
		return fmt.Errorf("incompatible accessMode: volume has %v, claim asks for %v", v.Spec.AccessModes, c.Spec.AccessModes)
	}
	return nil
}

// FindMatchingVolume chooses the volume a claim binds to, or nil, with the
// rules of upstream's index.go:
//
//   - only volumes whose access modes contain all of the claim's are
//     considered, grouped by their set of modes; the group with the fewest
//     modes that holds a match wins, so a ReadWriteOnce claim does not take
//     a ReadWriteMany volume while a ReadWriteOnce one fits;
//   - a volume whose claimRef already names the claim is chosen at once if
//     it is large enough and of the claim's volume mode (pre-binding, and
//     the volume side of a binding a restarted controller must finish);
//   - other volumes must be Available, unclaimed, not being deleted, of the
//     claim's class, labelled to match the claim's selector and at least as
//     large as the request; the smallest wins;
//   - with node set, only volumes whose node affinity admits the node count;
//     with delayBinding and no node, only pre-bound volumes are chosen: the
//     pod's node is not known yet.
func FindMatchingVolume(claim *corev1alpha1.PersistentVolumeClaim, volumes []corev1alpha1.PersistentVolume, node *corev1alpha1.Node, delayBinding bool) (*corev1alpha1.PersistentVolume, error) {
	var selector labels.Selector
	if claim.Spec.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(claim.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("claim %s/%s has an invalid selector: %w", claim.Namespace, claim.Name, err)
		}
		selector = s
	}
	req := requested(claim)
	class := ClaimClass(claim)

	// Group the candidates by their access-mode sets, fewest modes first.
	groups := map[string][]*corev1alpha1.PersistentVolume{}
	var keys []string
	for i := range volumes {
		v := &volumes[i]
		if !containsModes(v.Spec.AccessModes, claim.Spec.AccessModes) {
			continue
		}
		k := modesKey(v.Spec.AccessModes)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], v)
	}
	sort.Slice(keys, func(i, j int) bool {
		ci, cj := modeCount(groups[keys[i]][0]), modeCount(groups[keys[j]][0])
		if ci != cj {
			return ci < cj
		}
		return keys[i] < keys[j]
	})

	for _, k := range keys {
		var smallest *corev1alpha1.PersistentVolume
		for _, v := range groups[k] {
			have := capacity(v)
			if have.Cmp(req) < 0 || volumeMode(v.Spec.VolumeMode) != volumeMode(claim.Spec.VolumeMode) {
				continue
			}
			if v.DeletionTimestamp != nil {
				continue
			}
			if node != nil && !NodeMatches(v, node) {
				continue
			}
			if IsVolumeBoundToClaim(v, claim) {
				return v, nil
			}
			if node == nil && delayBinding {
				continue
			}
			if v.Status.Phase != corev1.VolumeAvailable || v.Spec.ClaimRef != nil {
				continue
			}
			if selector != nil && !selector.Matches(labels.Set(v.Labels)) {
				continue
			}
			if v.Spec.StorageClassName != class {
				continue
			}
			if smallest != nil {
				cur := capacity(smallest)
				if c := cur.Cmp(have); c < 0 || (c == 0 && smallest.Name < v.Name) {
					continue
				}
			}
			smallest = v
		}
		if smallest != nil {
			return smallest, nil
		}
	}
	return nil, nil
}

// modeCount counts a volume's distinct access modes.
func modeCount(v *corev1alpha1.PersistentVolume) int {
	seen := map[corev1.PersistentVolumeAccessMode]bool{}
	for _, m := range v.Spec.AccessModes {
		seen[m] = true
	}
	return len(seen)
}

func modesKey(modes []corev1.PersistentVolumeAccessMode) string {
	s := make([]string, 0, len(modes))
	for _, m := range modes {
		if !slices.Contains(s, string(m)) {
			s = append(s, string(m))
		}
	}
	sort.Strings(s)
	return fmt.Sprint(s)
}
