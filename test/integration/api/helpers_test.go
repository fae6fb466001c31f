package api_test

import (
	"bytes"
	"fmt"
	"os/exec"

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

// typedCopy converts an unstructured skiff object to its Go type.
func typedCopy(u *unstructured.Unstructured) client.Object {
	obj, err := testScheme.New(u.GroupVersionKind())
	Expect(err).NotTo(HaveOccurred())
	Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj)).To(Succeed())
	return obj.(client.Object)
}
