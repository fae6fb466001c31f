package batch

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	batchv1alpha1 "github.com/skiff-dev/skiff/api/batch/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// TestSyncActiveReadsPastTheCache covers an active Job the cache does not
// hold: one the API server still has stays active (the cache is behind),
// one it does not have leaves with a MissingJob event, as upstream.
func TestSyncActiveReadsPastTheCache(t *testing.T) {
	owner := []metav1.OwnerReference{{APIVersion: batchv1alpha1.GroupVersion.String(), Kind: "CronJob", Name: "cj", UID: "cj-uid", Controller: ptr.To(true)}}
	job := &batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cj-1", UID: "u1", OwnerReferences: owner}}
	orphan := job.DeepCopy()
	orphan.OwnerReferences = nil
	refOf := func(name, uid string) corev1.ObjectReference {
		return corev1.ObjectReference{Namespace: "ns", Name: name, UID: types.UID(uid)}
	}
	for _, tc := range []struct {
		name       string
		stored     []client.Object
		wantActive []string
		wantEvent  string
	}{
		{name: "in the API server, not yet in the cache", stored: []client.Object{job}, wantActive: []string{"cj-1"}},
		{name: "deleted", wantEvent: "MissingJob Active job went missing: cj-1"},
		{name: "the name is another Job's now", stored: []client.Object{&batchv1alpha1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cj-1", UID: "u2", OwnerReferences: owner}}}, wantEvent: "MissingJob"},
		{name: "no longer the CronJob's", stored: []client.Object{orphan}, wantEvent: "MissingJob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(tc.stored...).Build()
			rec := events.NewFakeRecorder(10)
			r := NewCronJobReconciler(nil, api, clocktesting.NewFakePassiveClock(job.CreationTimestamp.Time), rec)
			cj := &batchv1alpha1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cj", UID: "cj-uid"}}
			cj.Status.Active = []corev1.ObjectReference{refOf("cj-1", "u1")}
			if _, err := r.syncActive(context.Background(), &cronJobScope{cronJob: cj}); err != nil {
				t.Fatal(err)
			}
			var active []string
			for _, ref := range cj.Status.Active {
				active = append(active, ref.Name)
			}
			if strings.Join(active, ",") != strings.Join(tc.wantActive, ",") {
				t.Errorf("active %v, want %v", active, tc.wantActive)
			}
			var got string
			select {
			case got = <-rec.Events:
			default:
			}
			if (tc.wantEvent == "") != (got == "") || !strings.Contains(got, tc.wantEvent) {
				t.Errorf("event %q, want %q", got, tc.wantEvent)
			}
		})
	}
}
