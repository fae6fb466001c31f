package agentclient

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestLogsURL(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC))
	tests := map[string]struct {
		opts *corev1.PodLogOptions
		want string
	}{
		"no options": {want: "/containerLogs/ns/web/app"},
		"every option": {opts: &corev1.PodLogOptions{Follow: true, Previous: true, Timestamps: true, TailLines: ptr.To[int64](0),
			SinceSeconds: ptr.To[int64](5), LimitBytes: ptr.To[int64](10), Stream: ptr.To("Stderr")},
			want: "/containerLogs/ns/web/app?follow=true&limitBytes=10&previous=true&sinceSeconds=5&stream=Stderr&tailLines=0&timestamps=true"},
		"since time": {opts: &corev1.PodLogOptions{SinceTime: &since}, want: "/containerLogs/ns/web/app?sinceTime=2026-11-26T07%3A00%3A00Z"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := LogsURL("ns", "web", "app", tc.opts); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestExecURL(t *testing.T) {
	u, err := ExecURL("https://10.0.0.1:10250", "ns", "web", "app", &corev1.PodExecOptions{Command: []string{"sh", "-c", "echo a b"}, Stdin: true, Stdout: true, TTY: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://10.0.0.1:10250/exec/ns/web/app?command=sh&command=-c&command=echo+a+b&stdin=true&stdout=true&tty=true"; u.String() != want {
		t.Errorf("got %s, want %s", u, want)
	}
}

func TestNodeAddress(t *testing.T) {
	n := &corev1alpha1.Node{Status: corev1alpha1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: "n1"}, {Type: corev1.NodeExternalIP, Address: "1.2.3.4"}, {Type: corev1.NodeInternalIP, Address: "10.0.0.1"},
	}}}
	if got := nodeAddress(n); got != "10.0.0.1" {
		t.Errorf("got %s, want the InternalIP", got)
	}
	n.Status.Addresses = n.Status.Addresses[:1]
	if got := nodeAddress(n); got != "n1" {
		t.Errorf("got %s, want the host name", got)
	}
}

func TestDefaultContainer(t *testing.T) {
	pod := &corev1alpha1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a"}, {Name: "b"}}}}
	if name, ambiguous := DefaultContainer(pod); name != "a" || !ambiguous {
		t.Errorf("got %s %v, want a, ambiguous", name, ambiguous)
	}
	pod.Annotations = map[string]string{DefaultContainerAnnotation: "b"}
	if name, ambiguous := DefaultContainer(pod); name != "b" || ambiguous {
		t.Errorf("got %s %v, want b from the annotation", name, ambiguous)
	}
}
