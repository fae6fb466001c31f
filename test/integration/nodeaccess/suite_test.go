// Package nodeaccess_test proves node identities are restricted as
// upstream's Node authorizer and NodeRestriction restrict kubelets: two
// nodes get credentials from the same code as `skiff node credentials`
// (a CertificateSigningRequest signed by kube-controller-manager's
// csrsigning controller), the control plane carries the skiff-agent
// ClusterRole bound to system:skiff-nodes and the skiff-node-restriction
// admission policy, and the manager runs the node-access controller. Node A
// runs a real agent (fake runtime) under its identity and is refused what
// belongs to node B.
package nodeaccess_test

import (
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/internal/controlplane"
	"github.com/skiff-dev/skiff/internal/manager"
	"github.com/skiff-dev/skiff/test/utils"
)

var (
	cp        *controlplane.ControlPlane
	mgr       *utils.Manager
	k8sClient client.WithWatch
	clientset kubernetes.Interface
	ctx       context.Context
	cancel    context.CancelFunc
)

func TestNodeAccess(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Node identity and restriction suite")
}

var _ = BeforeSuite(func() {
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	cp, k8sClient, err = utils.StartControlPlane(ctx, controlplane.Options{}, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	clientset, err = kubernetes.NewForConfig(cp.Config)
	Expect(err).NotTo(HaveOccurred())
	mgr, err = utils.StartManager(ctx, rest.CopyConfig(cp.Config), manager.Options{Areas: []string{"nodeaccess"}})
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if mgr != nil {
		Expect(mgr.Stop()).To(Succeed())
	}
	cancel()
	if cp != nil {
		Expect(cp.Stop()).To(Succeed())
	}
})
