package nodeaccess

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestPodReferences(t *testing.T) {
	ref := func(n string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: n} }
	tests := map[string]struct {
		spec corev1.PodSpec
		want References
	}{
		"nothing referenced": {
			spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Env: []corev1.EnvVar{{Name: "X", Value: "1"}}}},
				Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}},
			want: References{},
		},
		"volumes, projected sources and image pull secrets": {
			spec: corev1.PodSpec{
				ImagePullSecrets: []corev1.LocalObjectReference{ref("pull")},
				Volumes: []corev1.Volume{
					{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol-secret", Optional: ptr.To(true)}}},
					{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("vol-cm")}}},
					{Name: "p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
						{Secret: &corev1.SecretProjection{LocalObjectReference: ref("proj-secret")}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("proj-cm")}},
						{DownwardAPI: &corev1.DownwardAPIProjection{}},
					}}}},
				},
			},
			want: References{Secrets: []string{"proj-secret", "pull", "vol-secret"}, ConfigMaps: []string{"proj-cm", "vol-cm"}},
		},
		"env and envFrom of init, regular and ephemeral containers, deduplicated": {
			spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "i", EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("init-secret")}}}}},
				Containers: []corev1.Container{{Name: "a",
					EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("shared-cm")}}},
					Env: []corev1.EnvVar{
						{Name: "S", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("key-secret"), Key: "k"}}},
						{Name: "C", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("shared-cm"), Key: "k"}}},
						{Name: "F", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
					}}},
				EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug",
					Env: []corev1.EnvVar{{Name: "D", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("debug-secret"), Key: "k"}}}}}}},
			},
			want: References{Secrets: []string{"debug-secret", "init-secret", "key-secret"}, ConfigMaps: []string{"shared-cm"}},
		},
		"empty names are ignored": {
			spec: corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{ref("")}},
			want: References{},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, PodReferences(&tc.spec)); diff != "" {
				t.Errorf("PodReferences (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredReferences(t *testing.T) {
	pod := func(ns, name string, secrets ...string) corev1alpha1.Pod {
		p := corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		for _, s := range secrets {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		return p
	}
	got := DesiredReferences([]corev1alpha1.Pod{pod("a", "p1", "s2", "s1"), pod("a", "p2", "s1", "s3"), pod("b", "p3"), pod("c", "p4", "x")})
	want := map[string]References{"a": {Secrets: []string{"s1", "s2", "s3"}}, "c": {Secrets: []string{"x"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DesiredReferences (-want +got):\n%s", diff)
	}
}

func TestDesiredRole(t *testing.T) {
	role := DesiredRole("n1", "ns", References{Secrets: []string{"s"}, ConfigMaps: []string{"c1", "c2"}})
	if role.Name != "skiff-node:n1" || role.Namespace != "ns" || nodeOf(role) != "n1" {
		t.Fatalf("role %s/%s, node %q", role.Namespace, role.Name, nodeOf(role))
	}
	if len(role.Rules) != 2 || role.Rules[0].Resources[0] != "secrets" || !cmp.Equal(role.Rules[1].ResourceNames, []string{"c1", "c2"}) ||
		!cmp.Equal(role.Rules[0].Verbs, []string{"get"}) {
		t.Errorf("rules: %+v", role.Rules)
	}
	b := DesiredRoleBinding("n1", "ns")
	if b.Subjects[0].Name != "system:skiff-node:n1" || b.RoleRef.Name != role.Name {
		t.Errorf("binding: %+v", b)
	}
}
