package volume

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

const (
	rwo = corev1.ReadWriteOnce
	rox = corev1.ReadOnlyMany
	rwx = corev1.ReadWriteMany
)

type pvBuilder struct{ pv corev1alpha1.PersistentVolume }

func makePV(name, size string, modes ...corev1.PersistentVolumeAccessMode) *pvBuilder {
	return &pvBuilder{pv: corev1alpha1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:    corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes: modes,
		},
		Status: corev1alpha1.PersistentVolumeStatus{Phase: corev1.VolumeAvailable},
	}}
}

func (b *pvBuilder) class(c string) *pvBuilder { b.pv.Spec.StorageClassName = c; return b }
func (b *pvBuilder) labels(l map[string]string) *pvBuilder {
	b.pv.Labels = l
	return b
}
func (b *pvBuilder) phase(p corev1.PersistentVolumePhase) *pvBuilder { b.pv.Status.Phase = p; return b }
func (b *pvBuilder) claimRef(ns, name string, uid types.UID) *pvBuilder {
	b.pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: name, UID: uid}
	return b
}
func (b *pvBuilder) block() *pvBuilder {
	m := corev1.PersistentVolumeBlock
	b.pv.Spec.VolumeMode = &m
	return b
}
func (b *pvBuilder) deleting() *pvBuilder {
	now := metav1.Now()
	b.pv.DeletionTimestamp = &now
	return b
}
func (b *pvBuilder) onNode(node string) *pvBuilder {
	b.pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
		MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
	}}}}
	return b
}
func (b *pvBuilder) obj() corev1alpha1.PersistentVolume { return b.pv }

type pvcBuilder struct {
	pvc corev1alpha1.PersistentVolumeClaim
}

func makePVC(name, size string, modes ...corev1.PersistentVolumeAccessMode) *pvcBuilder {
	return &pvcBuilder{pvc: corev1alpha1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: modes,
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}}
}

func (b *pvcBuilder) class(c string) *pvcBuilder { b.pvc.Spec.StorageClassName = &c; return b }
func (b *pvcBuilder) selector(l map[string]string) *pvcBuilder {
	b.pvc.Spec.Selector = &metav1.LabelSelector{MatchLabels: l}
	return b
}
func (b *pvcBuilder) block() *pvcBuilder {
	m := corev1.PersistentVolumeBlock
	b.pvc.Spec.VolumeMode = &m
	return b
}
func (b *pvcBuilder) obj() *corev1alpha1.PersistentVolumeClaim { return &b.pvc }

func node(name string) *corev1alpha1.Node {
	return &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{corev1.LabelHostname: name}}}
}

// The cases port the behaviours of upstream's index_test.go.
func TestFindMatchingVolume(t *testing.T) {
	pool := []corev1alpha1.PersistentVolume{
		makePV("gce-1g", "1Gi", rwo, rox).obj(),
		makePV("gce-5g", "5Gi", rwo, rox).obj(),
		makePV("gce-10g", "10Gi", rwo, rox).obj(),
		makePV("nfs-5g", "5Gi", rwo, rox, rwx).obj(),
		makePV("nfs-10g", "10Gi", rwo, rox, rwx).obj(),
		makePV("local-2g", "2Gi", rwo).obj(),
	}
	cases := map[string]struct {
		claim   *corev1alpha1.PersistentVolumeClaim
		volumes []corev1alpha1.PersistentVolume
		node    *corev1alpha1.Node
		delay   bool
		want    string
	}{
		"the smallest volume that is large enough": {
			claim: makePVC("c", "3Gi", rwo, rox).obj(), volumes: pool, want: "gce-5g",
		},
		"an exact size match": {
			claim: makePVC("c", "1Gi", rwo, rox).obj(), volumes: pool, want: "gce-1g",
		},
		"nothing is large enough": {
			claim: makePVC("c", "20Gi", rwo).obj(), volumes: pool, want: "",
		},
		"the fewest access modes win before the smallest size": {
			claim: makePVC("c", "1Gi", rwo).obj(), volumes: pool, want: "local-2g",
		},
		"ReadWriteMany is served only by volumes that have it": {
			claim: makePVC("c", "1Gi", rwx).obj(), volumes: pool, want: "nfs-5g",
		},
		"a volume must have every requested mode": {
			claim: makePVC("c", "1Gi", rwx, rwo).obj(), volumes: []corev1alpha1.PersistentVolume{makePV("a", "1Gi", rwo).obj(), makePV("b", "1Gi", rwx).obj()}, want: "",
		},
		"a volume pre-bound by name wins over a smaller one": {
			claim: makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{
				makePV("small", "1Gi", rwo).obj(),
				makePV("mine", "10Gi", rwo).claimRef("ns", "c", "").phase(corev1.VolumeAvailable).obj(),
			},
			want: "mine",
		},
		"a volume bound to this claim's UID is found again after a restart": {
			claim: makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{
				makePV("small", "1Gi", rwo).obj(),
				makePV("half-bound", "5Gi", rwo).claimRef("ns", "c", "uid-c").phase(corev1.VolumeBound).obj(),
			},
			want: "half-bound",
		},
		"a volume pre-bound to a claim of the same name but another UID is skipped": {
			claim:   makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{makePV("old", "1Gi", rwo).claimRef("ns", "c", "uid-old").phase(corev1.VolumeReleased).obj()},
			want:    "",
		},
		"a pre-bound volume that is too small is not chosen": {
			claim:   makePVC("c", "5Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{makePV("mine", "1Gi", rwo).claimRef("ns", "c", "").obj()},
			want:    "",
		},
		"a volume pre-bound to another claim is skipped": {
			claim: makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{
				makePV("theirs", "1Gi", rwo).claimRef("ns", "other", "").obj(),
				makePV("free", "2Gi", rwo).obj(),
			},
			want: "free",
		},
		"volumes that are not Available are skipped": {
			claim: makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{
				makePV("released", "1Gi", rwo).phase(corev1.VolumeReleased).obj(),
				makePV("failed", "1Gi", rwo).phase(corev1.VolumeFailed).obj(),
				makePV("pending", "1Gi", rwo).phase(corev1.VolumePending).obj(),
			},
			want: "",
		},
		"a volume being deleted is skipped": {
			claim:   makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{makePV("gone", "1Gi", rwo).deleting().obj()},
			want:    "",
		},
		"the class must match": {
			claim: makePVC("c", "1Gi", rwo).class("fast").obj(),
			volumes: []corev1alpha1.PersistentVolume{
				makePV("none", "1Gi", rwo).obj(),
				makePV("slow", "1Gi", rwo).class("slow").obj(),
				makePV("fast", "5Gi", rwo).class("fast").obj(),
			},
			want: "fast",
		},
		"a claim without a class takes only volumes without one": {
			claim:   makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{makePV("fast", "1Gi", rwo).class("fast").obj()},
			want:    "",
		},
		"the selector must match the volume's labels": {
			claim: makePVC("c", "1Gi", rwo).selector(map[string]string{"tier": "gold"}).obj(),
			volumes: []corev1alpha1.PersistentVolume{
				makePV("silver", "1Gi", rwo).labels(map[string]string{"tier": "silver"}).obj(),
				makePV("gold", "5Gi", rwo).labels(map[string]string{"tier": "gold"}).obj(),
			},
			want: "gold",
		},
		"the volume mode must match": {
			claim: makePVC("c", "1Gi", rwo).block().obj(),
			volumes: []corev1alpha1.PersistentVolume{
				makePV("fs", "1Gi", rwo).obj(),
				makePV("blk", "5Gi", rwo).block().obj(),
			},
			want: "blk",
		},
		"a Filesystem claim does not take a Block volume": {
			claim:   makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{makePV("blk", "1Gi", rwo).block().obj()},
			want:    "",
		},
		"equal sizes are broken by name": {
			claim:   makePVC("c", "1Gi", rwo).obj(),
			volumes: []corev1alpha1.PersistentVolume{makePV("b", "1Gi", rwo).obj(), makePV("a", "1Gi", rwo).obj()},
			want:    "a",
		},
		"delayed binding without a node chooses nothing but a pre-bound volume": {
			claim: makePVC("c", "1Gi", rwo).obj(), delay: true,
			volumes: []corev1alpha1.PersistentVolume{makePV("free", "1Gi", rwo).onNode("n1").obj()},
			want:    "",
		},
		"delayed binding with a pre-bound volume binds it": {
			claim: makePVC("c", "1Gi", rwo).obj(), delay: true,
			volumes: []corev1alpha1.PersistentVolume{makePV("mine", "1Gi", rwo).claimRef("ns", "c", "").obj()},
			want:    "mine",
		},
		"with a node, only volumes on that node count": {
			claim: makePVC("c", "1Gi", rwo).obj(), delay: true, node: node("n2"),
			volumes: []corev1alpha1.PersistentVolume{
				makePV("on-n1", "1Gi", rwo).onNode("n1").obj(),
				makePV("on-n2", "5Gi", rwo).onNode("n2").obj(),
				makePV("anywhere", "10Gi", rwo).obj(),
			},
			want: "on-n2",
		},
		"a pre-bound volume on another node is not chosen": {
			claim: makePVC("c", "1Gi", rwo).obj(), delay: true, node: node("n2"),
			volumes: []corev1alpha1.PersistentVolume{makePV("mine", "1Gi", rwo).onNode("n1").claimRef("ns", "c", "").obj()},
			want:    "",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := FindMatchingVolume(tc.claim, tc.volumes, tc.node, tc.delay)
			if err != nil {
				t.Fatal(err)
			}
			gotName := ""
			if got != nil {
				gotName = got.Name
			}
			if gotName != tc.want {
				t.Errorf("got volume %q, want %q", gotName, tc.want)
			}
		})
	}
}

func TestCheckVolumeSatisfiesClaim(t *testing.T) {
	cases := map[string]struct {
		vol   corev1alpha1.PersistentVolume
		claim *corev1alpha1.PersistentVolumeClaim
		ok    bool
	}{
		"fits":               {makePV("v", "2Gi", rwo).obj(), makePVC("c", "1Gi", rwo).obj(), true},
		"too small":          {makePV("v", "1Gi", rwo).obj(), makePVC("c", "2Gi", rwo).obj(), false},
		"other class":        {makePV("v", "1Gi", rwo).class("a").obj(), makePVC("c", "1Gi", rwo).obj(), false},
		"other volume mode":  {makePV("v", "1Gi", rwo).block().obj(), makePVC("c", "1Gi", rwo).obj(), false},
		"missing accessMode": {makePV("v", "1Gi", rwo).obj(), makePVC("c", "1Gi", rwx).obj(), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := CheckVolumeSatisfiesClaim(&tc.vol, tc.claim)
			if (err == nil) != tc.ok {
				t.Errorf("got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
