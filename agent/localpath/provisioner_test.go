package localpath

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/volume"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// The deleter removes only a Released, Delete, local-path volume of its own
// node whose directory is a volume directory under its root.
func TestDeleteReleasedVolumes(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	pv := func(name, path, node string, phase corev1.PersistentVolumePhase, policy corev1.PersistentVolumeReclaimPolicy, by string) *corev1alpha1.PersistentVolume {
		class := &storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "c"}, ReclaimPolicy: &policy}
		claim := &corev1alpha1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: "u"}}
		v := desiredVolume(claim, class, name, path, node)
		v.Annotations[volume.AnnProvisionedBy] = by
		v.Status.Phase = phase
		return v
	}
	cases := map[string]struct {
		pv      *corev1alpha1.PersistentVolume
		deleted bool
	}{
		"released with Delete":          {pv("a", filepath.Join(root, "a"), "n1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete, storagev1alpha1.ProvisionerLocalPath), true},
		"still bound":                   {pv("b", filepath.Join(root, "b"), "n1", corev1.VolumeBound, corev1.PersistentVolumeReclaimDelete, storagev1alpha1.ProvisionerLocalPath), false},
		"released with Retain":          {pv("c", filepath.Join(root, "c"), "n1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimRetain, storagev1alpha1.ProvisionerLocalPath), false},
		"another node's volume":         {pv("d", filepath.Join(root, "d"), "n2", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete, storagev1alpha1.ProvisionerLocalPath), false},
		"not provisioned by local-path": {pv("e", filepath.Join(root, "e"), "n1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete, "someone/else"), false},
		"a path outside the root":       {pv("f", outside, "n1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete, storagev1alpha1.ProvisionerLocalPath), false},
		"the root itself":               {pv("g", root, "n1", corev1.VolumeReleased, corev1.PersistentVolumeReclaimDelete, storagev1alpha1.ProvisionerLocalPath), false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			dir := tc.pv.Spec.Local.Path
			if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
				t.Fatal(err)
			}
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(tc.pv).Build()
			p := volumeReconciler{New(c, events.NewFakeRecorder(10), "n1", root)}
			if _, err := p.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tc.pv)}); err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(dir)
			gone := apierrors.IsNotFound(c.Get(context.Background(), client.ObjectKeyFromObject(tc.pv), &corev1alpha1.PersistentVolume{}))
			if os.IsNotExist(statErr) != tc.deleted || gone != tc.deleted {
				t.Errorf("directory removed %v, volume deleted %v; want both %v", os.IsNotExist(statErr), gone, tc.deleted)
			}
		})
	}
}
