package scheduler

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/volume"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func TestUnboundClaimFilter(t *testing.T) {
	onHost := func(name string, hosts ...string) *corev1alpha1.PersistentVolume {
		pv := &corev1alpha1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}}
		pv.Spec.StorageClassName = "static"
		pv.Spec.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
		pv.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
		pv.Status.Phase = corev1.VolumeAvailable
		if len(hosts) > 0 {
			pv.Spec.NodeAffinity = &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: hosts}},
			}}}}
		}
		return pv
	}
	claim := func(class string, ann ...string) *corev1alpha1.PersistentVolumeClaim {
		c := &corev1alpha1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "uid-c"}}
		c.Spec.StorageClassName = &class
		c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
		c.Spec.Resources.Requests = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}
		if len(ann) == 2 {
			c.Annotations = map[string]string{ann[0]: ann[1]}
		}
		return c
	}
	local := &storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: storagev1alpha1.ProvisionerLocalPath}
	zoned := &storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "zoned"}, Provisioner: storagev1alpha1.ProvisionerLocalPath,
		AllowedTopologies: []corev1.TopologySelectorTerm{{MatchLabelExpressions: []corev1.TopologySelectorLabelRequirement{{Key: corev1.LabelTopologyZone, Values: []string{"a"}}}}}}
	static := &storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "static"}, Provisioner: storagev1alpha1.ProvisionerNone}
	host := func(n string) *corev1alpha1.Node { return MakeNode(n).Labels(corev1.LabelHostname, n).Obj() }
	nodes := []*corev1alpha1.Node{
		MakeNode("n1").Labels(corev1.LabelHostname, "n1", corev1.LabelTopologyZone, "a").Obj(),
		MakeNode("n2").Labels(corev1.LabelHostname, "n2", corev1.LabelTopologyZone, "b").Obj(),
		host("n3"),
	}
	conflict := []string{reasonVolumeBindConflict}
	tests := []struct {
		name  string
		claim *corev1alpha1.PersistentVolumeClaim
		objs  []client.Object
		want  map[string][]string
	}{{
		name:  "a provisioning class without allowedTopologies admits every node",
		claim: claim("local"), objs: []client.Object{local},
		want: map[string][]string{},
	}, {
		name:  "allowedTopologies restrict the nodes",
		claim: claim("zoned"), objs: []client.Object{zoned},
		want: map[string][]string{"n2": conflict, "n3": conflict},
	}, {
		name:  "a claim whose provisioning started stays on its selected node",
		claim: claim("local", volume.AnnSelectedNode, "n3"), objs: []client.Object{local},
		want: map[string][]string{"n1": conflict, "n2": conflict},
	}, {
		name:  "a static class admits the nodes of matching volumes",
		claim: claim("static"), objs: []client.Object{static, onHost("pv-a", "n1"), onHost("pv-b", "n3")},
		want: map[string][]string{"n2": conflict},
	}, {
		name:  "a static class without a matching volume admits no node",
		claim: claim("static"), objs: []client.Object{static},
		want: map[string][]string{"n1": conflict, "n2": conflict, "n3": conflict},
	}, {
		name:  "a matching volume without node affinity admits every node",
		claim: claim("static"), objs: []client.Object{static, onHost("pv-a", "n1"), onHost("pv-any")},
		want: map[string][]string{},
	}, {
		name:  "a missing class admits no node",
		claim: claim("missing"),
		want:  map[string][]string{"n1": conflict, "n2": conflict, "n3": conflict},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Scheduler{client: fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(tc.objs...).Build()}
			vol := volumeInfo{unbound: []claimPlacement{s.claimPlacement(context.Background(), tc.claim)}}
			got := filterResults(cacheWith(nodes, nil), MakePod("p", "ns").Info(), vol)
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("filter results (-want +got):\n%s", d)
			}
		})
	}
}
