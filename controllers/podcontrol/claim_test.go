package podcontrol

import (
	"context"
	"errors"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func TestClaim(t *testing.T) {
	owner := &appsv1alpha1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "rs", Namespace: "ns", UID: "rs-uid"}}
	gvk := appsv1alpha1.GroupVersion.WithKind("ReplicaSet")
	ours := ControllerRef(owner, gvk)
	theirs := ControllerRef(&appsv1alpha1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "other", UID: "other-uid"}}, gvk)
	tests := map[string]struct {
		ownerDeleting bool
		canAdopt      error
		wantClaimed   []string
		wantOwned     []string // pods whose controller is the owner afterwards
		wantErr       bool
	}{
		"adopts matching orphans, releases non-matching children, ignores others' pods": {
			wantClaimed: []string{"mine", "orphan"},
			wantOwned:   []string{"mine", "orphan"},
		},
		"a deleting owner neither adopts nor releases": {
			ownerDeleting: true,
			wantClaimed:   []string{"mine"},
			wantOwned:     []string{"mine", "mine-mislabelled"},
		},
		"no adoption when the owner is gone on the server": {
			canAdopt:    errors.New("gone"),
			wantClaimed: []string{"mine"},
			wantOwned:   []string{"mine"},
			wantErr:     true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pods := []*corev1alpha1.Pod{
				makePod("mine").labels("app", "web").ownedBy(ours).obj(),
				makePod("mine-mislabelled").labels("app", "db").ownedBy(ours).obj(),
				makePod("orphan").labels("app", "web").obj(),
				makePod("orphan-other-labels").labels("app", "db").obj(),
				makePod("theirs").labels("app", "web").ownedBy(theirs).obj(),
			}
			var objs []client.Object
			for _, p := range pods {
				objs = append(objs, p.DeepCopy())
			}
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).Build()
			// Re-read so resourceVersions match the fake store (optimistic locking).
			for _, p := range pods {
				if err := c.Get(context.Background(), client.ObjectKeyFromObject(p), p); err != nil {
					t.Fatal(err)
				}
			}
			o := owner.DeepCopy()
			if tc.ownerDeleting {
				now := metav1.Now()
				o.DeletionTimestamp = &now
			}
			m := &Claimer{Client: c, Owner: o, OwnerGVK: gvk, Selector: labels.SelectorFromSet(labels.Set{"app": "web"}),
				CanAdopt: func(context.Context) error { return tc.canAdopt }}
			claimed, err := Claim(context.Background(), m, pods)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			var got []string
			for _, p := range claimed {
				got = append(got, p.Name)
			}
			sort.Strings(got)
			if diff := cmp.Diff(tc.wantClaimed, got); diff != "" {
				t.Errorf("claimed (-want +got):\n%s", diff)
			}
			var list corev1alpha1.PodList
			if err := c.List(context.Background(), &list); err != nil {
				t.Fatal(err)
			}
			var owned []string
			for _, p := range list.Items {
				if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == owner.UID {
					owned = append(owned, p.Name)
				}
			}
			sort.Strings(owned)
			if diff := cmp.Diff(tc.wantOwned, owned); diff != "" {
				t.Errorf("owned afterwards (-want +got):\n%s", diff)
			}
		})
	}
}
