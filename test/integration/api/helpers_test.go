package api_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// newNamespace creates a namespace with a unique name and returns the name.
func newNamespace(prefix string) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-" + rand.String(5)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// fromYAML decodes one manifest into an unstructured object in namespace ns
// (cluster-scoped kinds ignore it).
func fromYAML(manifest, ns string) *unstructured.Unstructured {
	obj := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(manifest), &obj.Object)).To(Succeed(), manifest)
	if ns != "" && !clusterScoped[obj.GetKind()] {
		obj.SetNamespace(ns)
	}
	return obj
}

var clusterScoped = map[string]bool{"Node": true, "PersistentVolume": true, "StorageClass": true, "Namespace": true}

// kubectl runs the kubectl of the control plane's Kubernetes version as the
// cluster administrator and returns its combined output.
func kubectl(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(cp.KubectlPath, append([]string{"--kubeconfig", cp.KubeconfigPath}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %v: %w\n%s", args, err, out)
	}
	return string(out), nil
}

func fromYAMLInto(manifest string, obj any) error { return yaml.Unmarshal([]byte(manifest), obj) }

func ownerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
}

func isGone(err error) bool { return apierrors.IsNotFound(err) }

// waitGCObserved returns once kube-controller-manager's garbage collector has
// observed every Pod created in namespace ns so far. It creates a probe Pod
// whose owner does not exist and waits for the collector to delete it: the
// collector's Pod informer delivers events in order, so by then the Pods
// created before the probe are in its dependency graph.
func waitGCObserved(ns string) {
	probe := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gc-probe", Namespace: ns,
			OwnerReferences: []metav1.OwnerReference{ownerRef(appsv1alpha1.GroupVersion.String(), "Deployment", "absent", types.UID(rand.String(16)))}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	Expect(k8sClient.Create(ctx, probe)).To(Succeed())
	Eventually(func() bool {
		return isGone(k8sClient.Get(ctx, client.ObjectKeyFromObject(probe), &corev1alpha1.Pod{}))
	}, 90*time.Second, 250*time.Millisecond).Should(BeTrue(), "the garbage collector did not delete a Pod whose owner does not exist")
}

// typedCopy converts an unstructured skiff object to its Go type.
func typedCopy(u *unstructured.Unstructured) client.Object {
	obj, err := testScheme.New(u.GroupVersionKind())
	Expect(err).NotTo(HaveOccurred())
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj)).To(Succeed())
	return obj.(client.Object)
}
