package volume

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	storagev1alpha1 "github.com/skiff-dev/skiff/api/storage/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func TestClaimValidatorResize(t *testing.T) {
	yes, no := true, false
	reader := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(
		&storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "grows"}, AllowVolumeExpansion: &yes},
		&storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "fixed"}, AllowVolumeExpansion: &no},
		&storagev1alpha1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "unset"}},
	).Build()
	bound := func(class, size, capacity string) *corev1alpha1.PersistentVolumeClaim {
		c := makePVC("c", size, rwo).class(class).obj()
		c.Spec.VolumeName = "v"
		c.Status.Phase = corev1.ClaimBound
		c.Status.Capacity = corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(capacity)}
		return c
	}
	resized := func(c *corev1alpha1.PersistentVolumeClaim, size string) *corev1alpha1.PersistentVolumeClaim {
		n := c.DeepCopy()
		n.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse(size)
		return n
	}
	cases := map[string]struct {
		old     *corev1alpha1.PersistentVolumeClaim
		size    string
		wantErr string
	}{
		"unchanged":                             {old: bound("fixed", "1Gi", "1Gi"), size: "1Gi"},
		"grows with allowVolumeExpansion":       {old: bound("grows", "1Gi", "1Gi"), size: "5Gi"},
		"grows without allowVolumeExpansion":    {old: bound("fixed", "1Gi", "1Gi"), size: "5Gi", wantErr: "must support resize"},
		"grows with allowVolumeExpansion unset": {old: bound("unset", "1Gi", "1Gi"), size: "5Gi", wantErr: "must support resize"},
		"grows with a missing class":            {old: bound("missing", "1Gi", "1Gi"), size: "5Gi", wantErr: "must support resize"},
		"an unbound claim":                      {old: makePVC("c", "1Gi", rwo).class("grows").obj(), size: "5Gi", wantErr: "only a bound claim can be resized"},
		"shrinks below its capacity":            {old: bound("grows", "2Gi", "2Gi"), size: "1Gi", wantErr: "less than status.capacity"},
		"shrinks back to its capacity":          {old: bound("grows", "4Gi", "2Gi"), size: "2Gi"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ClaimValidator{Reader: reader}.ValidateUpdate(context.Background(), tc.old, resized(tc.old, tc.size))
			if tc.wantErr == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "spec.resources.requests.storage")) {
				t.Fatalf("got %v, want an error naming the field with %q", err, tc.wantErr)
			}
		})
	}
}
