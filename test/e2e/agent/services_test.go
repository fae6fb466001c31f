package agent_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/manager"
)

// Services end to end: the manager allocates addresses and writes
// EndpointSlices, the agent's proxy programs nftables and its DNS answers
// on the node's pod-bridge address; clients are busybox pods.
var _ = Describe("Services on real containers", Ordered, func() {
	var (
		ns       string
		gateway  string // the node's pod-bridge address: the agent's DNS
		clientID string // the container of the client pod
		web      = map[string]string{"app": "svc-web"}
	)

	// inClient runs a shell command in the client pod.
	inClient := func(script string) (string, error) {
		out, stderr, err := runtime.ExecSync(ctx, clientID, []string{"sh", "-c", script}, 15*time.Second)
		if err != nil {
			return string(out), fmt.Errorf("%v: %s%s", err, out, stderr)
		}
		return string(out), nil
	}
	// httpFrom asks host:port for / from the client pod and returns the
	// pod name in the answer ("hello from <pod>").
	helloRE := regexp.MustCompile(`hello from (\S+)`)
	httpFrom := func(host string, port int32) (string, error) {
		out, err := inClient(fmt.Sprintf(`printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 3 %s %d`, host, port))
		if err != nil {
			return "", err
		}
		m := helloRE.FindStringSubmatch(out)
		if m == nil {
			return "", fmt.Errorf("no hello in %q", out)
		}
		return m[1], nil
	}
	// lookup resolves a name with the pod's resolver settings (busybox
	// nslookup reads /etc/resolv.conf; it asks every search domain at once
	// and exits 1 when any of them has no answer, so only its output counts)
	// and returns the addresses.
	addrRE := regexp.MustCompile(`(?m)^Address:\s*(\d+\.\d+\.\d+\.\d+)\s*$`)
	lookup := func(name string) ([]string, error) {
		out, err := inClient("nslookup " + name + "; true")
		if err != nil {
			return nil, err
		}
		var addrs []string
		// The first Address line names the server (with its port).
		for _, m := range addrRE.FindAllStringSubmatch(out, -1) {
			addrs = append(addrs, m[1])
		}
		sort.Strings(addrs)
		return addrs, nil
	}
	createService := func(name string, mutate func(*corev1alpha1.Service)) *corev1alpha1.Service {
		svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		svc.Spec.Selector = web
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
		if mutate != nil {
			mutate(svc)
		}
		Expect(k8sClient.Create(ctx, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(svc), svc)).To(Succeed())
			g.Expect(meta.IsStatusConditionTrue(svc.Status.Conditions, conditions.Ready)).To(BeTrue())
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		return svc
	}
	readyPods := func(g Gomega, labels map[string]string) map[string]string {
		list := &corev1alpha1.PodList{}
		g.Expect(k8sClient.List(ctx, list, client.InNamespace(ns), client.MatchingLabels(labels))).To(Succeed())
		out := map[string]string{}
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil && meta.IsStatusConditionTrue(p.Status.Conditions, conditions.Ready) {
				out[p.Name] = p.Status.PodIP
			}
		}
		return out
	}
	// backends asks n times and returns who answered how often.
	backends := func(host string, port int32, n int) map[string]int {
		seen := map[string]int{}
		for range n {
			name, err := httpFrom(host, port)
			Expect(err).NotTo(HaveOccurred())
			seen[name]++
		}
		return seen
	}

	BeforeAll(func() {
		ns = newNamespace()
		gateway = subnet + "1"
		mgr, err := manager.New(cp.Config, manager.Options{MetricsAddr: "0", ProbeAddr: "0",
			Areas: []string{"apps", "scheduler", "services"}, SkipNameValidation: true})
		Expect(err).NotTo(HaveOccurred())
		mctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer GinkgoRecover()
			Expect(mgr.Start(mctx)).To(Succeed())
		}()
		DeferCleanup(func() { stop(); <-done })

		By("building the UDP echo server, mounted into pods from the host")
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "udpecho"), "./test/e2e/agent/udpecho")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))

		By("running a 3-replica web Deployment and a client pod")
		d := &appsv1alpha1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
		d.Spec.Replicas = ptr.To[int32](3)
		d.Spec.Selector = &metav1.LabelSelector{MatchLabels: web}
		d.Spec.Template.Labels = web
		d.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr.To[int64](2)
		d.Spec.Template.Spec.Containers = []corev1.Container{webContainer()}
		onSuiteNode(&d.Spec.Template.Spec)
		Expect(k8sClient.Create(ctx, d)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(ctx, d) })

		caller := createPod(ns, "client", []corev1.Container{{Name: "c", Image: busyboxImage, Command: []string{"sleep", "3600"}}})
		Eventually(func(g Gomega) bool { return isReady(g, caller) }, time.Minute, 200*time.Millisecond).Should(BeTrue())
		Eventually(func(g Gomega) { clientID = containerID(g, caller, 0) }, time.Minute, 200*time.Millisecond).Should(Succeed())
		Eventually(func(g Gomega) map[string]string { return readyPods(g, web) }, 2*time.Minute, 250*time.Millisecond).Should(HaveLen(3))
	})

	It("gives ClusterFirst pods the node's cluster DNS, the upstream search list and ndots:5", func() {
		out, err := inClient("cat /etc/resolv.conf")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("nameserver " + gateway + "\n"))
		Expect(out).To(MatchRegexp(`(?m)^search %s\.svc\.cluster\.local svc\.cluster\.local cluster\.local\b`, ns))
		Expect(out).To(MatchRegexp(`(?m)^options ndots:5$`))
	})

	It("reaches every backend through the ClusterIP and through web.<ns>.svc.cluster.local", func() {
		svc := createService("web", nil)
		name := "web." + ns + ".svc.cluster.local"
		Eventually(func() ([]string, error) { return lookup(name + ".") }, 30*time.Second, time.Second).Should(Equal([]string{svc.Spec.ClusterIP}))
		// A relative name through the pod's search list.
		Expect(lookup("web")).To(Equal([]string{svc.Spec.ClusterIP}))

		Eventually(func() error { _, err := httpFrom(svc.Spec.ClusterIP, 80); return err }, time.Minute, 500*time.Millisecond).Should(Succeed())
		pods := readyPods(Default, web)
		Eventually(func() map[string]int { return backends(svc.Spec.ClusterIP, 80, 30) }, time.Minute, time.Second).
			Should(And(HaveLen(3), HaveEach(BeNumerically(">", 0))))
		seen := backends(svc.Spec.ClusterIP, 80, 30)
		for p := range seen {
			Expect(pods).To(HaveKey(p))
		}
		GinkgoWriter.Printf("30 requests to %s:80 answered by %v\n", svc.Spec.ClusterIP, seen)

		// The name, resolved by the client's own resolver (nc).
		Expect(backends(name, 80, 6)).NotTo(BeEmpty())
	})

	It("stops sending traffic to a pod that turns not ready", func() {
		svc := &corev1alpha1.Service{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Namespace: ns, Name: "web"}, svc)).To(Succeed())
		pods := readyPods(Default, web)
		var victim string
		for p := range pods {
			victim = p
			break
		}
		pod := get(&corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: victim}})(Default)
		id := containerID(Default, pod, 0)
		_, _, err := runtime.ExecSync(ctx, id, []string{"rm", "/www/index.html"}, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) bool { return isReady(g, pod) }, 30*time.Second, 200*time.Millisecond).Should(BeFalse())
		// Once the proxy has the new endpoints, no answer comes from it
		// (it would answer 404 without the hello).
		Eventually(func() map[string]int {
			seen := map[string]int{}
			for range 20 {
				name, err := httpFrom(svc.Spec.ClusterIP, 80)
				if err != nil {
					name = "error"
				}
				seen[name]++
			}
			return seen
		}, 30*time.Second, time.Second).Should(And(HaveLen(2), Not(HaveKey(victim)), Not(HaveKey("error"))))

		_, _, err = runtime.ExecSync(ctx, id, []string{"sh", "-c", "echo hello from " + victim + " > /www/index.html"}, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) bool { return isReady(g, pod) }, 30*time.Second, 200*time.Millisecond).Should(BeTrue())
		Eventually(func() map[string]int { return backends(svc.Spec.ClusterIP, 80, 30) }, 30*time.Second, time.Second).Should(HaveKey(victim))
	})

	It("keeps a client on one backend with sessionAffinity ClientIP", func() {
		svc := createService("sticky", func(s *corev1alpha1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](300)}}
		})
		Eventually(func() error { _, err := httpFrom(svc.Spec.ClusterIP, 80); return err }, time.Minute, 500*time.Millisecond).Should(Succeed())
		seen := backends(svc.Spec.ClusterIP, 80, 20)
		Expect(seen).To(HaveLen(1), "a ClientIP-affine Service spread one client over %v", seen)
	})

	It("answers a NodePort on the node's address", func() {
		svc := createService("web-np", func(s *corev1alpha1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
		port := svc.Spec.Ports[0].NodePort
		Expect(port).To(BeNumerically(">=", 30000))
		// The pod bridge's address is the node's address on the pod network.
		Eventually(func() error { _, err := httpFrom(gateway, port); return err }, time.Minute, 500*time.Millisecond).Should(Succeed())
		// And from the node itself.
		Eventually(func() (string, error) { return httpGet(fmt.Sprintf("http://%s:%d/", gateway, port)) }, 30*time.Second, 500*time.Millisecond).
			Should(HavePrefix("hello from web-"))
	})

	It("resolves a headless Service to the ready pod IPs", func() {
		createService("web-headless", func(s *corev1alpha1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone })
		var want []string
		for _, ip := range readyPods(Default, web) {
			want = append(want, ip)
		}
		sort.Strings(want)
		Eventually(func() ([]string, error) { return lookup("web-headless." + ns + ".svc.cluster.local.") }, 30*time.Second, time.Second).Should(Equal(want))
	})

	It("carries UDP, and moves a flow off an endpoint that goes away", func() {
		udp := map[string]string{"app": "svc-udp"}
		echo := func(name string) *corev1alpha1.Pod {
			return createPod(ns, name, []corev1.Container{{
				Name: "echo", Image: busyboxImage, Command: []string{"/ext/udpecho", "-listen", ":5353"},
				Env:          []corev1.EnvVar{{Name: "POD_NAME", Value: name}},
				Ports:        []corev1.ContainerPort{{Name: "echo", ContainerPort: 5353, Protocol: corev1.ProtocolUDP}},
				VolumeMounts: []corev1.VolumeMount{{Name: "ext", MountPath: "/ext", ReadOnly: true}},
			}}, func(p *corev1alpha1.Pod) {
				p.Labels = udp
				p.Spec.Volumes = []corev1.Volume{{Name: "ext", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: binDir}}}}
			})
		}
		first := echo("udp-1")
		Eventually(func(g Gomega) map[string]string { return readyPods(g, udp) }, time.Minute, 250*time.Millisecond).Should(HaveLen(1))
		svc := createService("echo", func(s *corev1alpha1.Service) {
			s.Spec.Selector = udp
			s.Spec.Ports = []corev1.ServicePort{{Name: "echo", Port: 5353, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromString("echo")}}
		})

		// One socket, so one source port: one conntrack flow throughout.
		conn, err := net.ListenUDP("udp4", nil)
		Expect(err).NotTo(HaveOccurred())
		defer conn.Close()
		target := &net.UDPAddr{IP: net.ParseIP(svc.Spec.ClusterIP), Port: 5353}
		ask := func() string {
			_, _ = conn.WriteTo([]byte("hi"), target)
			_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			buf := make([]byte, 256)
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return ""
			}
			return string(buf[:n])
		}
		Eventually(ask, time.Minute, 200*time.Millisecond).Should(Equal("hello from udp-1"))

		// A second endpoint: the flow stays where conntrack has it.
		echo("udp-2")
		Eventually(func(g Gomega) map[string]string { return readyPods(g, udp) }, time.Minute, 250*time.Millisecond).Should(HaveLen(2))
		Consistently(ask, 2*time.Second, 200*time.Millisecond).Should(Equal("hello from udp-1"))

		// The first goes away: without clearing its conntrack entry, the
		// flow's datagrams (one every 200 ms keeps the entry alive) would
		// go on to its address forever.
		Expect(k8sClient.Delete(ctx, first)).To(Succeed())
		Eventually(ask, 20*time.Second, 200*time.Millisecond).Should(Equal("hello from udp-2"))
	})
})
