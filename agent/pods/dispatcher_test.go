package pods

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestSpecChanged(t *testing.T) {
	base := MakePod("web").Containers("a").Obj()
	base.Generation = 1
	tests := map[string]struct {
		mutate func(p *corev1alpha1.Pod)
		want   bool
	}{
		"a status write":               {mutate: func(p *corev1alpha1.Pod) { p.Status.DisplayStatus = "Running"; p.ResourceVersion = "7" }, want: false},
		"a spec change":                {mutate: func(p *corev1alpha1.Pod) { p.Generation = 2 }, want: true},
		"deletion":                     {mutate: func(p *corev1alpha1.Pod) { now := metav1.Now(); p.DeletionTimestamp = &now }, want: true},
		"a label for the downward API": {mutate: func(p *corev1alpha1.Pod) { p.Labels = map[string]string{"a": "b"} }, want: true},
		"a finalizer removed":          {mutate: func(p *corev1alpha1.Pod) { p.Finalizers = []string{"x"} }, want: true},
		"another pod under the name":   {mutate: func(p *corev1alpha1.Pod) { p.UID = "recreated"; p.ResourceVersion = "9" }, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cur := base.DeepCopy()
			tc.mutate(cur)
			if got := specChanged(base, cur); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
