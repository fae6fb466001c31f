package health_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/knftables"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/controllers/proxy"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// scrape reads the agent's /metrics endpoint and returns the value of each
// sample, keyed by its name and labels as the text format writes them.
func scrape(g Gomega) map[string]float64 {
	resp, err := http.Get("http://" + agentMetrics + "/metrics")
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	raw, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		g.Expect(err).NotTo(HaveOccurred(), line)
		out[line[:i]] = v
	}
	return out
}

var _ = Describe("Prometheus metrics", func() {
	It("count scheduling attempts, pod starts, proxy syncs and node heartbeats after real work", func() {
		ns := newNamespace()
		d := create(&appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "metrics"},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](3), Selector: selector("metrics"), Template: template("metrics")}})
		expectHealth(d, kstatus.StatusCurrent)
		t := template("nofit", tooBig)
		create(&corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nofit"}, Spec: t.Spec})

		By("one sync of the service proxy, programming a fake nftables")
		p := proxy.New(knftables.NewFake(knftables.IPv4Family, proxy.TableName), k8sClient, proxy.Config{NodeName: "health-0"})
		sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
		defer scancel()
		Expect(p.Sync(sctx)).To(Succeed())

		Eventually(func(g Gomega) {
			m := scrape(g)
			g.Expect(m).To(HaveKeyWithValue(`skiff_scheduler_schedule_attempts_total{result="scheduled"}`, BeNumerically(">=", 3)))
			g.Expect(m).To(HaveKeyWithValue(`skiff_scheduler_schedule_attempts_total{result="unschedulable"}`, BeNumerically(">=", 1)))
			g.Expect(m).To(HaveKeyWithValue(`skiff_scheduler_scheduling_attempt_duration_seconds_count{result="scheduled"}`, BeNumerically(">=", 3)))
			g.Expect(m).To(HaveKeyWithValue(`skiff_scheduler_scheduling_attempt_duration_seconds_sum{result="scheduled"}`, BeNumerically(">", 0)))
			g.Expect(m).To(HaveKeyWithValue(`skiff_scheduler_pod_scheduling_duration_seconds_count`, BeNumerically(">=", 3)))
			g.Expect(m).To(HaveKeyWithValue(`skiff_agent_pod_start_duration_seconds_count`, BeNumerically(">=", 3)))
			// The fake runtime takes 100ms to start a container.
			g.Expect(m).To(HaveKeyWithValue(`skiff_agent_pod_start_duration_seconds_sum`, BeNumerically(">=", 0.3)))
			g.Expect(m).To(HaveKeyWithValue(`skiff_agent_node_lease_renewals_total{result="success"}`, BeNumerically(">=", simNodes)))
			g.Expect(m).To(HaveKeyWithValue(`skiff_proxy_sync_duration_seconds_count`, BeNumerically(">=", 1)))
			g.Expect(m).To(HaveKeyWithValue(`skiff_proxy_last_sync_timestamp_seconds`, BeNumerically(">", 0)))
			// controller-runtime's own metrics are served beside them.
			g.Expect(m).To(HaveKey(HavePrefix("controller_runtime_reconcile_total")))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("the agent's health probes")
		for _, path := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get("http://" + agentProbes + path)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK), path)
		}
	})
})
