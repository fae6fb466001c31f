package multinode_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/node"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/nodeid"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// nodeIdentity issues node nodeName an identity of its own, with the code
// of `skiff node credentials`, and returns its client configuration. It
// is the suite's ClusterOptions.NodeConfig: every agent runs as its node.
func nodeIdentity(c *Cluster, nodeName string) (*rest.Config, error) {
	cs, err := kubernetes.NewForConfig(c.ControlPlane.Config)
	if err != nil {
		return nil, err
	}
	creds, err := nodeid.Issue(ctx, cs, nodeName, nodeid.Options{})
	if err != nil {
		return nil, err
	}
	return creds.Config(c.ControlPlane.Config), nil
}

// refused asserts a 403 whose message names the reason.
func refused(err error, reason string) {
	GinkgoHelper()
	Expect(err).To(HaveOccurred(), "the request was allowed")
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "not a 403: %v", err)
	Expect(err.Error()).To(ContainSubstring(reason))
}

var _ = Describe("Node identities", func() {
	It("restrict a node to its own objects on a running cluster: it reads its pod's Secret and is refused the other nodes' Node, Lease, pod status and Secret", func() {
		ns := newNamespace()
		n0, n1 := cluster.Nodes[0], cluster.Nodes[1]
		podWithSecret := func(n *Node, secret string) *corev1alpha1.Pod {
			Expect(cluster.Client.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret}, StringData: map[string]string{"token": "for " + n.Name},
			})).To(Succeed())
			return createPodOn(ns, "uses-"+secret, n, nil, corev1.Container{
				Name: "app", Image: BusyboxImage, Command: []string{"sleep", "3600"},
				Env: []corev1.EnvVar{{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "token"}}}},
			})
		}
		pod0 := waitRunning(podWithSecret(n0, "secret-0"))
		pod1 := waitRunning(podWithSecret(n1, "secret-1"))
		out, err := n0.Exec(ctx, containerIDOf(pod0), "sh", "-c", "echo $TOKEN")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.TrimSpace(out)).To(Equal("for " + n0.Name))

		By("authenticating node 0's identity as system:skiff-node:" + n0.Name)
		cfg, err := nodeIdentity(cluster, n0.Name)
		Expect(err).NotTo(HaveOccurred())
		cs, err := kubernetes.NewForConfig(cfg)
		Expect(err).NotTo(HaveOccurred())
		review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(review.Status.UserInfo.Username).To(Equal(nodeid.UserName(n0.Name)))
		as0, err := client.New(cfg, client.Options{Scheme: scheme.New()})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() error {
			return as0.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secret-0"}, &corev1.Secret{})
		}).Should(Succeed(), "node 0 reads the Secret of its pod")

		By("refusing node 0 what belongs to node 1")
		refused(as0.Get(ctx, client.ObjectKey{Namespace: ns, Name: "secret-1"}, &corev1.Secret{}), `cannot get resource "secrets"`)
		other := &corev1alpha1.Node{}
		Expect(as0.Get(ctx, client.ObjectKey{Name: n1.Name}, other)).To(Succeed())
		changed := other.DeepCopy()
		changed.Spec.Unschedulable = true
		refused(as0.Patch(ctx, changed, client.MergeFrom(other)), `is not allowed to modify node "`+n1.Name+`"`)
		status := pod1.DeepCopy()
		status.Status.Phase = corev1.PodFailed
		refused(as0.Status().Patch(ctx, status, client.MergeFrom(pod1)), "can only update pod status for pods with spec.nodeName set to itself")
		lease := &coordinationv1.Lease{}
		Expect(as0.Get(ctx, client.ObjectKey{Namespace: node.LeaseNamespace, Name: n1.Name}, lease)).To(Succeed())
		lease.Spec.HolderIdentity = ptr.To(n0.Name)
		refused(as0.Update(ctx, lease), "can only access the node lease with its own name")
	})
})
