package agent_test

import (
	"context"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent"
	"github.com/skiff-dev/skiff/agent/cri/fake"
	"github.com/skiff-dev/skiff/agent/node"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

var _ = Describe("Node pressure", func() {
	It("reports MemoryPressure while available memory is below the threshold, and says by how much", func() {
		const gi = 1 << 30
		var mu sync.Mutex
		obs := node.Observations{node.SignalMemoryAvailable: {Available: 4 * gi, Capacity: 8 * gi}}
		setMemory := func(avail int64) {
			mu.Lock()
			defer mu.Unlock()
			obs = node.Observations{node.SignalMemoryAvailable: {Available: avail, Capacity: 8 * gi}}
		}
		th, err := node.ParseThresholds(node.DefaultEvictionHardFlags)
		Expect(err).NotTo(HaveOccurred())

		name := "pressure-0"
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		DeferCleanup(func() {
			stop()
			Eventually(done, 30*time.Second).Should(Receive())
			Expect(k8sClient.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		})
		res := node.Resources{CPU: resource.MustParse("2"), Memory: resource.MustParse("8Gi"), EphemeralStorage: resource.MustParse("10Gi")}
		go func() {
			done <- agent.Run(actx, agent.Options{
				Config: cp.Config, Runtime: fake.New(fake.Options{}),
				Nodes:         []agent.NodeSpec{{Name: name, Machine: node.SimulatedMachine(name, 99, res)}},
				LeaseInterval: time.Second, StatusInterval: 200 * time.Millisecond,
				Observe: func() node.Observations {
					mu.Lock()
					defer mu.Unlock()
					return obs
				},
				Thresholds: th,
			})
		}()
		condition := func(g Gomega) *metav1.Condition {
			n := &corev1alpha1.Node{}
			g.Expect(k8sClient.Get(ctx, client.ObjectKey{Name: name}, n)).To(Succeed())
			return meta.FindStatusCondition(n.Status.Conditions, corev1alpha1.NodeMemoryPressure)
		}
		Eventually(condition).Should(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", "AgentHasSufficientMemory")))

		setMemory(64 << 20)
		Eventually(condition).Should(And(
			HaveField("Status", metav1.ConditionTrue),
			HaveField("Reason", "AgentHasInsufficientMemory"),
			HaveField("Message", "The agent has insufficient memory available: memory.available is 64Mi, below the threshold memory.available<100Mi")))

		setMemory(2 * gi)
		Eventually(condition).Should(HaveField("Status", metav1.ConditionFalse))
	})
})
