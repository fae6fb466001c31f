package pods

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

func TestClaimVolumes(t *testing.T) {
	dir := t.TempDir()
	claim := func(name, volume string, phase corev1.PersistentVolumeClaimPhase) *corev1alpha1.PersistentVolumeClaim {
		c := &corev1alpha1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)}}
		c.Spec.VolumeName = volume
		c.Status.Phase = phase
		return c
	}
	pv := func(name, claimUID string, src corev1.PersistentVolumeSource) *corev1alpha1.PersistentVolume {
		v := &corev1alpha1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: name}}
		v.Spec.PersistentVolumeSource = src
		if claimUID != "" {
			v.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "ns", UID: types.UID("uid-" + claimUID)}
		}
		return v
	}
	local := corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir}}
	missing := corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: dir + "/missing"}}
	create := corev1.HostPathDirectoryOrCreate
	hostPath := corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir + "/made", Type: &create}}
	objs := []client.Object{
		claim("pending", "", corev1.ClaimPending),
		claim("local", "pv-local", corev1.ClaimBound), pv("pv-local", "local", local),
		claim("host", "pv-host", corev1.ClaimBound), pv("pv-host", "host", hostPath),
		claim("gone", "pv-gone", corev1.ClaimBound), pv("pv-gone", "gone", missing),
		claim("stolen", "pv-stolen", corev1.ClaimBound), pv("pv-stolen", "someone-else", local),
	}
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(objs...).Build()
	v := NewHostVolumes(t.TempDir(), c)
	pod := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}

	cases := map[string]struct {
		claim   string
		want    string
		wantErr string
	}{
		"a missing claim":                     {claim: "nope", wantErr: `persistentvolumeclaim "nope" not found`},
		"an unbound claim waits":              {claim: "pending", wantErr: `persistentvolumeclaim "pending" is not bound yet`},
		"a local volume's path":               {claim: "local", want: dir},
		"a hostPath volume is created":        {claim: "host", want: dir + "/made"},
		"a local volume whose path is gone":   {claim: "gone", wantErr: "local path of persistentvolume"},
		"a volume bound to another claim UID": {claim: "stolen", wantErr: `persistentvolume "pv-stolen" is not bound to claim "stolen"`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := v.claimPath(context.Background(), pod, tc.claim)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestReadOnlyVolume(t *testing.T) {
	pod := &corev1alpha1.Pod{}
	pod.Spec.Volumes = []corev1.Volume{
		{Name: "ro", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c", ReadOnly: true}}},
		{Name: "rw", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}},
		{Name: "empty", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	for name, want := range map[string]bool{"ro": true, "rw": false, "empty": false, "unknown": false} {
		if got := ReadOnlyVolume(pod, name); got != want {
			t.Errorf("ReadOnlyVolume(%s) = %v, want %v", name, got, want)
		}
	}
}
