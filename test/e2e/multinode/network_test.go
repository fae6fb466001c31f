package multinode_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/routes"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// whoamiContainer serves HTTP on 8080: / answers "hello from <pod>", and
// /cgi-bin/whoami "hello from <pod> to <client address>", the source
// address as the server sees it.
func whoamiContainer() corev1.Container {
	script := `mkdir -p /www/cgi-bin && echo "hello from $POD_NAME" > /www/index.html && ` +
		`printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho hello from %s to $REMOTE_ADDR\n' "$POD_NAME" > /www/cgi-bin/whoami && ` +
		`chmod +x /www/cgi-bin/whoami && exec httpd -f -p 8080 -h /www`
	return corev1.Container{
		Name: "web", Image: BusyboxImage, Command: []string{"sh", "-c", script},
		Env:   []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
			PeriodSeconds: 1,
		},
	}
}

// createPodOn creates a pod bound to node n.
func createPodOn(ns, name string, n *Node, labels map[string]string, c corev1.Container) *corev1alpha1.Pod {
	p := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{
			NodeName: n.Name, TerminationGracePeriodSeconds: ptr.To[int64](1),
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{c},
		},
	}
	Expect(cluster.Client.Create(ctx, p)).To(Succeed())
	return p
}

// waitRunning waits until the pod is Ready and returns it.
func waitRunning(p *corev1alpha1.Pod) *corev1alpha1.Pod {
	got := &corev1alpha1.Pod{}
	Eventually(func(g Gomega) {
		g.Expect(cluster.Client.Get(ctx, client.ObjectKeyFromObject(p), got)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, conditions.Ready)).To(BeTrue(), "pod %s not ready: %+v", p.Name, got.Status.Conditions)
		g.Expect(got.Status.PodIP).NotTo(BeEmpty())
		g.Expect(got.Status.ContainerStatuses).NotTo(BeEmpty())
	}, 2*time.Minute, 250*time.Millisecond).Should(Succeed())
	return got
}

func containerIDOf(p *corev1alpha1.Pod) string {
	return strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
}

var helloRE = regexp.MustCompile(`hello from (\S+)(?: to (\S+))?`)

// httpFromPod asks http://host:port/path from a container of node n and
// returns who answered and, for /cgi-bin/whoami, the address it saw.
func httpFromPod(n *Node, containerID, host string, port int32, path string) (string, string, error) {
	out, err := n.Exec(ctx, containerID, "sh", "-c", fmt.Sprintf(`printf 'GET %s HTTP/1.0\r\n\r\n' | nc -w 3 %s %d`, path, host, port))
	if err != nil {
		return "", "", err
	}
	m := helloRE.FindStringSubmatch(out)
	if m == nil {
		return "", "", fmt.Errorf("no hello in %q", out)
	}
	// busybox httpd listens on IPv6 and gives an IPv4 client as
	// "[::ffff:10.252.0.2]".
	from := strings.TrimSuffix(strings.TrimPrefix(m[2], "[::ffff:"), "]")
	return m[1], from, nil
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// nodeRoutes lists the routes the agent of n programmed (proto 77).
func nodeRoutes(n *Node) ([]string, error) {
	out, err := n.Output("ip", "-4", "route", "show", "proto", fmt.Sprint(int(routes.Protocol)))
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) >= 3 {
			lines = append(lines, f[0]+" via "+f[2])
		}
	}
	return lines, nil
}

// wantRoutes is what n should route: every other Node in the API (a lost
// node's too, until its Node is deleted) through its address.
func wantRoutes(n *Node) []string {
	nodes := &corev1alpha1.NodeList{}
	Expect(cluster.Client.List(ctx, nodes)).To(Succeed())
	var want []string
	for _, o := range nodes.Items {
		ip, ok := routes.InternalIP(&o)
		if o.Name != n.Name && ok && o.Spec.PodCIDR != "" {
			want = append(want, o.Spec.PodCIDR+" via "+ip.String())
		}
	}
	return want
}

// Traffic between nodes: pod to pod, pod to a ClusterIP Service whose
// backends run elsewhere, and NodePort through a node that runs none.
var _ = Describe("Pod network across nodes", Ordered, func() {
	var (
		ns               string
		n0, n1, n2       *Node
		caller           *corev1alpha1.Pod // on n0
		web1, web2       *corev1alpha1.Pod // on n1 and n2
		webLabels        = map[string]string{"app": "web"}
		onlyWeb2Selector = map[string]string{"app": "web", "backend": "two"}
	)

	BeforeAll(func() {
		ns = newNamespace()
		n0, n1, n2 = cluster.Nodes[0], cluster.Nodes[1], cluster.Nodes[2]
		c := createPodOn(ns, "caller", n0, nil, corev1.Container{Name: "c", Image: BusyboxImage, Command: []string{"sleep", "3600"}})
		w1 := createPodOn(ns, "web-1", n1, webLabels, whoamiContainer())
		w2 := createPodOn(ns, "web-2", n2, map[string]string{"app": "web", "backend": "two"}, whoamiContainer())
		caller, web1, web2 = waitRunning(c), waitRunning(w1), waitRunning(w2)
		GinkgoWriter.Printf("caller %s on %s, web-1 %s on %s, web-2 %s on %s\n",
			caller.Status.PodIP, n0.Name, web1.Status.PodIP, n1.Name, web2.Status.PodIP, n2.Name)
	})

	It("routes every other node's pod CIDR through that node's address, on every node", func() {
		for _, n := range cluster.LiveNodes() {
			Eventually(func() ([]string, error) { return nodeRoutes(n) }, 30*time.Second, 250*time.Millisecond).Should(ConsistOf(wantRoutes(n)), "routes on %s", n.Name)
		}
	})

	It("carries pod to pod traffic across nodes with the client pod's own source address", func() {
		for _, target := range []*corev1alpha1.Pod{web1, web2} {
			var who, from string
			Eventually(func() (err error) {
				who, from, err = httpFromPod(n0, containerIDOf(caller), target.Status.PodIP, 8080, "/cgi-bin/whoami")
				return err
			}, 30*time.Second, 500*time.Millisecond).Should(Succeed())
			Expect(who).To(Equal(target.Name))
			Expect(from).To(Equal(caller.Status.PodIP), "the server on another node saw another source address")
		}
		// Between two nodes neither of which runs the caller.
		who, from, err := httpFromPod(n1, containerIDOf(web1), web2.Status.PodIP, 8080, "/cgi-bin/whoami")
		Expect(err).NotTo(HaveOccurred())
		Expect(who).To(Equal("web-2"))
		Expect(from).To(Equal(web1.Status.PodIP))
	})

	It("balances a ClusterIP Service over backends that all run on other nodes, reaching every one, by address and by name", func() {
		svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}}
		svc.Spec.Selector = webLabels
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
		Expect(cluster.Client.Create(ctx, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(cluster.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc)).To(Succeed())
			g.Expect(svc.Spec.ClusterIP).NotTo(BeEmpty())
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		ask := func() (map[string]int, map[string]int) {
			seen, sources := map[string]int{}, map[string]int{}
			for range 20 {
				who, from, err := httpFromPod(n0, containerIDOf(caller), svc.Spec.ClusterIP, 80, "/cgi-bin/whoami")
				if err != nil {
					who = "error"
				}
				seen[who]++
				sources[from]++
			}
			return seen, sources
		}
		Eventually(func() map[string]int { seen, _ := ask(); return seen }, time.Minute, time.Second).
			Should(And(HaveKey("web-1"), HaveKey("web-2"), Not(HaveKey("error"))))
		seen, sources := ask()
		GinkgoWriter.Printf("20 requests to %s:80 from %s answered by %v\n", svc.Spec.ClusterIP, n0.Name, seen)
		Expect(seen).To(And(HaveKey("web-1"), HaveKey("web-2"), Not(HaveKey("error"))))
		// Pod to Service keeps the pod's address, as upstream.
		Expect(sources).To(Equal(map[string]int{caller.Status.PodIP: 20}))
		// By name, through the caller's node's cluster DNS.
		Eventually(func() (string, error) {
			who, _, err := httpFromPod(n0, containerIDOf(caller), "web."+ns+".svc.cluster.local", 80, "/")
			return who, err
		}, 30*time.Second, 500*time.Millisecond).Should(BeElementOf("web-1", "web-2"))
	})

	It("answers a NodePort on the address of nodes that run no backend", func() {
		svc := &corev1alpha1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web-np", Namespace: ns}}
		svc.Spec.Type = corev1.ServiceTypeNodePort
		svc.Spec.Selector = onlyWeb2Selector
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}}
		Expect(cluster.Client.Create(ctx, svc)).To(Succeed())
		var port int32
		Eventually(func(g Gomega) {
			g.Expect(cluster.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc)).To(Succeed())
			port = svc.Spec.Ports[0].NodePort
			g.Expect(port).To(BeNumerically(">=", 30000))
		}, time.Minute, 200*time.Millisecond).Should(Succeed())
		// From the host, on the link, through n0 and n1: the backend is on n2.
		for _, n := range []*Node{n0, n1} {
			url := fmt.Sprintf("http://%s:%d/", n.IP, port)
			Eventually(func() (string, error) { return httpGet(url) }, time.Minute, 500*time.Millisecond).Should(HavePrefix("hello from web-2"), url)
		}
		// From a pod on n0 through n1's address.
		Eventually(func() (string, error) {
			who, _, err := httpFromPod(n0, containerIDOf(caller), n1.IP.String(), port, "/")
			return who, err
		}, 30*time.Second, 500*time.Millisecond).Should(Equal("web-2"))
	})

	It("removes a node's routes when its agent stops cleanly, and programs them again when it starts", func() {
		before, err := nodeRoutes(n0)
		Expect(err).NotTo(HaveOccurred())
		Expect(before).To(ConsistOf(wantRoutes(n0)))
		n0.StopAgent(syscall.SIGTERM)
		Expect(nodeRoutes(n0)).To(BeEmpty())
		Expect(n0.StartAgent()).To(Succeed())
		Expect(n0.WaitReady(ctx, time.Minute)).To(Succeed())
		Eventually(func() ([]string, error) { return nodeRoutes(n0) }, 30*time.Second, 250*time.Millisecond).Should(ConsistOf(before))
		// The pods of n0 kept running, and reach the other nodes again.
		Eventually(func() (string, error) {
			who, _, err := httpFromPod(n0, containerIDOf(caller), web1.Status.PodIP, 8080, "/")
			return who, err
		}, 30*time.Second, 500*time.Millisecond).Should(Equal("web-1"))
	})
})

var _ = Describe("Routes as nodes come and go", func() {
	It("routes to a node that joins, and stops when its Node is deleted", func() {
		n0 := cluster.Nodes[0]
		joined, err := cluster.AddNode(ctx, fmt.Sprintf("mn-%s-join", cluster.ID))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = joined.Kill() })
		Expect(joined.WaitReady(ctx, 2*time.Minute)).To(Succeed())
		node := &corev1alpha1.Node{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Name: joined.Name}, node)).To(Succeed())
		route := node.Spec.PodCIDR + " via " + joined.IP.String()
		Eventually(func() ([]string, error) { return nodeRoutes(n0) }, 30*time.Second, 250*time.Millisecond).Should(ContainElement(route))
		// The newcomer routes to the others too.
		Eventually(func() ([]string, error) { return nodeRoutes(joined) }, 30*time.Second, 250*time.Millisecond).Should(ConsistOf(wantRoutes(joined)))

		// A lost node keeps its route while its Node exists (its pods may
		// still run), and loses it with its Node.
		Expect(joined.Kill()).To(Succeed())
		Consistently(func() ([]string, error) { return nodeRoutes(n0) }, 2*time.Second, 500*time.Millisecond).Should(ContainElement(route))
		Expect(cluster.Client.Delete(ctx, node)).To(Succeed())
		Eventually(func() ([]string, error) { return nodeRoutes(n0) }, 30*time.Second, 250*time.Millisecond).ShouldNot(ContainElement(route))
	})
})

var _ = Describe("The harness", func() {
	It("partitions a node from the API server while its link stays up, and heals it", func() {
		n0 := cluster.Nodes[0]
		n, err := cluster.AddNode(ctx, fmt.Sprintf("mn-%s-part", cluster.ID))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			_ = n.Kill()
			_ = cluster.Client.Delete(ctx, &corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name}})
		})
		Expect(n.WaitReady(ctx, 2*time.Minute)).To(Succeed())
		host, port, err := cluster.apiAddress()
		Expect(err).NotTo(HaveOccurred())
		// bash's /dev/tcp connects from inside a node's namespace.
		connect := func(from *Node, host, port string) error {
			out, err := from.Output("timeout", "2", "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%s", host, port))
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
		reachAPI := func() error { return connect(n, host, port) }
		node := &corev1alpha1.Node{}
		Expect(cluster.Client.Get(ctx, client.ObjectKey{Name: n.Name}, node)).To(Succeed())
		agentPort := fmt.Sprint(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
		Expect(reachAPI()).To(Succeed())
		Expect(n.Partition()).To(Succeed())
		Expect(reachAPI()).NotTo(Succeed())
		// The link itself works: n0 reaches n's agent API.
		Expect(connect(n0, n.IP.String(), agentPort)).To(Succeed())
		Expect(n.Heal()).To(Succeed())
		Expect(reachAPI()).To(Succeed())
		Expect(n.WaitReady(ctx, time.Minute)).To(Succeed())
	})
})
