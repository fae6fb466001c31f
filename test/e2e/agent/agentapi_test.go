package agent_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/logs"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/agentclient"
)

// readLogs reads a container's log to its end.
func readLogs(ep *agentclient.Endpoint, ns, pod, container string, opts *corev1.PodLogOptions) (string, error) {
	rc, err := ep.Logs(ctx, ns, pod, container, opts)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return string(b), err
}

// execIn runs a command through an executor and returns its output and exit code.
func execIn(ex remotecommand.Executor, stdin string) (stdout, stderr string, code int, err error) {
	var o, e bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &o, Stderr: &e}
	if stdin != "" {
		opts.Stdin = strings.NewReader(stdin)
	}
	err = ex.StreamWithContext(ctx, opts)
	var exit exec.CodeExitError
	if errors.As(err, &exit) {
		return o.String(), e.String(), exit.Code, nil
	}
	return o.String(), e.String(), 0, err
}

// rawExec sends an exec upgrade request and returns the status code the
// agent answers before any upgrade.
func rawExec(cfg *rest.Config, ns, pod, container string) int {
	u, err := agentclient.ExecURL(cfg.Host, ns, pod, container, &corev1.PodExecOptions{Command: []string{"true"}, Stdout: true})
	Expect(err).NotTo(HaveOccurred())
	hc, err := rest.HTTPClientFor(cfg)
	Expect(err).NotTo(HaveOccurred())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set("X-Stream-Protocol-Version", "v4.channel.k8s.io")
	resp, err := hc.Do(req)
	Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
	return resp.StatusCode
}

// sizeQueue hands out terminal sizes, then ends.
type sizeQueue chan remotecommand.TerminalSize

func (q sizeQueue) Next() *remotecommand.TerminalSize {
	s, ok := <-q
	if !ok {
		return nil
	}
	return &s
}

var _ = Describe("Agent API: logs and exec", Ordered, func() {
	var (
		ns    string
		admin *agentclient.Endpoint
		cs    *kubernetes.Clientset
	)
	counter := corev1.Container{Name: "count", Image: busyboxImage,
		Command: []string{"sh", "-c", `i=0; while :; do echo "tick $i"; i=$((i+1)); usleep 200000; done`}}
	restarter := corev1.Container{Name: "restarter", Image: busyboxImage,
		Command:      []string{"sh", "-c", `n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo "run $n"; usleep 200000; echo "oops $n" >&2; sleep 1; exit 1`},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}

	BeforeAll(func() {
		ns = newNamespace()
		var err error
		cs, err = kubernetes.NewForConfig(cp.Config)
		Expect(err).NotTo(HaveOccurred())
		createPod(ns, "logger", []corev1.Container{counter, restarter}, func(p *corev1alpha1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		})
		ac, err := agentclient.New(cp.Config)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			admin, err = ac.NodeEndpoint(ctx, nodeName)
			g.Expect(err).NotTo(HaveOccurred())
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		// The administrator of the control plane authenticates with a
		// client certificate, checked against --client-ca-file.
		Expect(admin.Config.CertData).NotTo(BeEmpty())
		Expect(admin.Config.BearerToken).To(BeEmpty())
		Eventually(func(g Gomega) {
			cs := get(&corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "logger"}})(g).Status.ContainerStatuses
			g.Expect(cs).To(HaveLen(2))
			g.Expect(cs[0].State.Running).NotTo(BeNil())
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("publishes its port and certificate in the Node status", func() {
		n := &corev1alpha1.Node{}
		Expect(k8sClient.Get(ctx, client.ObjectKey{Name: nodeName}, n)).To(Succeed())
		Expect(n.Status.DaemonEndpoints.KubeletEndpoint.Port).To(BeNumerically(">", 0))
		Expect(n.Status.AgentCertificate).To(HavePrefix("-----BEGIN CERTIFICATE-----"))
		Expect(admin.Config.Host).To(Equal(fmt.Sprintf("https://127.0.0.1:%d", n.Status.DaemonEndpoints.KubeletEndpoint.Port)))
	})

	It("serves the logs of a running container: tail, since, timestamps, limitBytes", func() {
		Eventually(func(g Gomega) {
			out, err := readLogs(admin, ns, "logger", "count", nil)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(strings.Count(out, "\n")).To(BeNumerically(">=", 10))
		}, 30*time.Second, 500*time.Millisecond).Should(Succeed())

		out, err := readLogs(admin, ns, "logger", "count", &corev1.PodLogOptions{TailLines: ptr.To[int64](2)})
		Expect(err).NotTo(HaveOccurred())
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		Expect(lines).To(HaveLen(2))
		var a, b int
		_, err = fmt.Sscanf(lines[0]+" "+lines[1], "tick %d tick %d", &a, &b)
		Expect(err).NotTo(HaveOccurred())
		Expect(b).To(Equal(a + 1))

		all, err := readLogs(admin, ns, "logger", "count", &corev1.PodLogOptions{Timestamps: true})
		Expect(err).NotTo(HaveOccurred())
		asked := time.Now()
		since, err := readLogs(admin, ns, "logger", "count", &corev1.PodLogOptions{Timestamps: true, SinceSeconds: ptr.To[int64](1)})
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(since, "\n")).To(BeNumerically("<", strings.Count(all, "\n")))
		Expect(strings.Count(since, "\n")).To(BeNumerically(">=", 2))
		for _, l := range strings.Split(strings.TrimSuffix(since, "\n"), "\n") {
			ts, rest, _ := strings.Cut(l, " ")
			Expect(rest).To(HavePrefix("tick "))
			t, err := time.Parse(time.RFC3339Nano, ts)
			Expect(err).NotTo(HaveOccurred())
			Expect(t).To(BeTemporally(">=", asked.Add(-1500*time.Millisecond)))
		}

		out, err = readLogs(admin, ns, "logger", "count", &corev1.PodLogOptions{LimitBytes: ptr.To[int64](10)})
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("tick 0\ntic"))
	})

	It("follows new lines", func() {
		rc, err := admin.Logs(ctx, ns, "logger", "count", &corev1.PodLogOptions{Follow: true, TailLines: ptr.To[int64](0)})
		Expect(err).NotTo(HaveOccurred())
		defer rc.Close()
		r := bufio.NewReader(rc)
		var prev int
		for i := range 5 {
			l, err := r.ReadString('\n')
			Expect(err).NotTo(HaveOccurred())
			var n int
			_, err = fmt.Sscanf(l, "tick %d", &n)
			Expect(err).NotTo(HaveOccurred())
			if i > 0 {
				Expect(n).To(Equal(prev + 1))
			}
			prev = n
		}
	})

	It("serves the previous container's logs after a restart", func() {
		Eventually(func(g Gomega) {
			cur, err := readLogs(admin, ns, "logger", "restarter", nil)
			g.Expect(err).NotTo(HaveOccurred())
			// stdout and stderr reach the log through separate pipes: look
			// for the lines, not at their order.
			m := regexp.MustCompile(`(?m)^run (\d+)$`).FindStringSubmatch(cur)
			g.Expect(m).To(HaveLen(2), "current log %q", cur)
			n, _ := strconv.Atoi(m[1])
			g.Expect(n).To(BeNumerically(">=", 2))
			prev, err := readLogs(admin, ns, "logger", "restarter", &corev1.PodLogOptions{Previous: true})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(strings.Split(strings.TrimSuffix(prev, "\n"), "\n")).To(ConsistOf(fmt.Sprintf("run %d", n-1), fmt.Sprintf("oops %d", n-1)),
				"previous log %q", prev)
			stderr, err := readLogs(admin, ns, "logger", "restarter", &corev1.PodLogOptions{Previous: true, Stream: ptr.To(corev1.LogStreamStderr)})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(stderr).To(Equal(fmt.Sprintf("oops %d\n", n-1)))
		}, 60*time.Second, time.Second).Should(Succeed())

		_, err := readLogs(admin, ns, "logger", "count", &corev1.PodLogOptions{Previous: true})
		Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring(`previous terminated container "count" in pod "logger" not found`))
		_, err = readLogs(admin, ns, "logger", "nope", nil)
		Expect(apierrors.IsBadRequest(err)).To(BeTrue(), "%v", err)
		_, err = readLogs(admin, ns, "nope", "count", nil)
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "%v", err)
	})

	It("ends a follow when the container ends", func() {
		p := createPod(ns, "short", []corev1.Container{{Name: "app", Image: busyboxImage, Command: []string{"sh", "-c", "echo first; sleep 3; echo last"}}},
			func(p *corev1alpha1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyNever })
		Eventually(func(g Gomega) {
			cs := get(p)(g).Status.ContainerStatuses
			g.Expect(cs).To(HaveLen(1))
			g.Expect(cs[0].State.Running).NotTo(BeNil())
		}, 60*time.Second, 100*time.Millisecond).Should(Succeed())
		done := make(chan string, 1)
		go func() {
			defer GinkgoRecover()
			out, err := readLogs(admin, ns, "short", "app", &corev1.PodLogOptions{Follow: true})
			Expect(err).NotTo(HaveOccurred())
			done <- out
		}()
		Eventually(done, 30*time.Second).Should(Receive(Equal("first\nlast\n")))
	})

	It("keeps following across log rotations", func() {
		// About 1 KiB per line, 50 lines a second: the 16 KiB logs of this
		// suite's agent rotate every second.
		pad := strings.Repeat("x", 1000)
		p := createPod(ns, "chatty", []corev1.Container{{Name: "app", Image: busyboxImage,
			Command: []string{"sh", "-c", `i=0; while :; do echo "seq $i ` + pad + `"; i=$((i+1)); usleep 20000; done`}}})
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		rc, err := admin.Logs(ctx, ns, "chatty", "app", &corev1.PodLogOptions{Follow: true, TailLines: ptr.To[int64](0)})
		Expect(err).NotTo(HaveOccurred())
		defer rc.Close()
		r := bufio.NewReaderSize(rc, 4096)
		first, prev := -1, -1
		for prev-first < 200 { // About 200 KiB: a dozen rotations.
			l, err := r.ReadString('\n')
			Expect(err).NotTo(HaveOccurred())
			var n int
			_, err = fmt.Sscanf(l, "seq %d", &n)
			Expect(err).NotTo(HaveOccurred())
			if first < 0 {
				first = n
			} else {
				Expect(n).To(Equal(prev+1), "a line was lost across a rotation")
			}
			prev = n
		}
		uid := get(p)(Default).UID
		dir := filepath.Join(rootDir, "logs", ns+"_chatty_"+string(uid), "app")
		rotated, err := logs.Rotated(filepath.Join(dir, "0.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(rotated).NotTo(BeEmpty(), "the log was never rotated")
		Expect(len(rotated)).To(BeNumerically("<=", logs.DefaultMaxFiles-1))
		st, err := os.Stat(filepath.Join(dir, "0.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Size()).To(BeNumerically("<", 64*1024))
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		Eventually(func() error { _, err := os.Stat(filepath.Dir(dir)); return err }, 30*time.Second, 200*time.Millisecond).Should(MatchError(os.ErrNotExist),
			"the logs of a removed pod remain")
	})

	It("runs a command and returns its output and exit code, over WebSocket and SPDY", func() {
		opts := &corev1.PodExecOptions{Command: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}, Stdout: true, Stderr: true}
		ex, err := admin.Executor(ns, "logger", "count", opts)
		Expect(err).NotTo(HaveOccurred())
		stdout, stderr, code, err := execIn(ex, "")
		Expect(err).NotTo(HaveOccurred())
		Expect([]any{stdout, stderr, code}).To(Equal([]any{"out\n", "err\n", 7}))

		u, err := agentclient.ExecURL(admin.Config.Host, ns, "logger", "count", opts)
		Expect(err).NotTo(HaveOccurred())
		spdy, err := remotecommand.NewSPDYExecutor(admin.Config, "POST", u)
		Expect(err).NotTo(HaveOccurred())
		stdout, stderr, code, err = execIn(spdy, "")
		Expect(err).NotTo(HaveOccurred())
		Expect([]any{stdout, stderr, code}).To(Equal([]any{"out\n", "err\n", 7}))
		ws, err := remotecommand.NewWebSocketExecutor(admin.Config, "GET", u.String())
		Expect(err).NotTo(HaveOccurred())
		stdout, _, code, err = execIn(ws, "")
		Expect(err).NotTo(HaveOccurred())
		Expect([]any{stdout, code}).To(Equal([]any{"out\n", 7}))

		// Figures, not assertions: one exec of that shell command, from the
		// request to the exit code.
		for name, ex := range map[string]remotecommand.Executor{"SPDY": spdy, "WebSocket": ws} {
			const n = 10
			start := time.Now()
			for range n {
				_, _, _, err := execIn(ex, "")
				Expect(err).NotTo(HaveOccurred())
			}
			GinkgoWriter.Printf("Exec over %s through the agent API: %s per command (mean of %d)\n", name, (time.Since(start) / n).Round(100*time.Microsecond), n)
		}

		ex, err = admin.Executor(ns, "logger", "count", &corev1.PodExecOptions{Command: []string{"cat"}, Stdin: true, Stdout: true})
		Expect(err).NotTo(HaveOccurred())
		stdout, _, code, err = execIn(ex, "through stdin\n")
		Expect(err).NotTo(HaveOccurred())
		Expect([]any{stdout, code}).To(Equal([]any{"through stdin\n", 0}))
	})

	It("runs an interactive session with a TTY and resizes it", func() {
		for _, proto := range []string{"websocket", "spdy"} {
			opts := &corev1.PodExecOptions{Command: []string{"sh"}, Stdin: true, Stdout: true, TTY: true}
			u, err := agentclient.ExecURL(admin.Config.Host, ns, "logger", "count", opts)
			Expect(err).NotTo(HaveOccurred())
			var ex remotecommand.Executor
			if proto == "spdy" {
				ex, err = remotecommand.NewSPDYExecutor(admin.Config, "POST", u)
			} else {
				ex, err = remotecommand.NewWebSocketExecutor(admin.Config, "GET", u.String())
			}
			Expect(err).NotTo(HaveOccurred())
			inR, inW := io.Pipe()
			outR, outW := io.Pipe()
			sizes := make(sizeQueue, 2)
			sizes <- remotecommand.TerminalSize{Width: 100, Height: 40}
			errc := make(chan error, 1)
			go func() {
				errc <- ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW, Tty: true, TerminalSizeQueue: sizes})
				_ = outW.Close()
			}()
			out := bufio.NewReader(outR)
			expectOutput := func(want string) {
				var seen strings.Builder
				for !strings.Contains(seen.String(), want) {
					b, err := out.ReadByte()
					Expect(err).NotTo(HaveOccurred(), "%s: waiting for %q in %q", proto, want, seen.String())
					seen.WriteByte(b)
				}
			}
			_, _ = io.WriteString(inW, "stty size\n")
			expectOutput("40 100")
			sizes <- remotecommand.TerminalSize{Width: 120, Height: 50}
			close(sizes)
			Eventually(func() string {
				_, _ = io.WriteString(inW, "stty size\n")
				var seen strings.Builder
				deadline := time.Now().Add(time.Second)
				for time.Now().Before(deadline) && !strings.Contains(seen.String(), "50 120") {
					b, err := out.ReadByte()
					if err != nil {
						break
					}
					seen.WriteByte(b)
					if b == '\n' && strings.Contains(seen.String(), "40 100\r\n") {
						break
					}
				}
				return seen.String()
			}, 10*time.Second).Should(ContainSubstring("50 120"), proto)
			_, _ = io.WriteString(inW, "exit 3\n")
			go func() { _, _ = io.Copy(io.Discard, outR) }()
			var err2 error
			Eventually(errc, 10*time.Second).Should(Receive(&err2))
			var exit exec.CodeExitError
			Expect(errors.As(err2, &exit)).To(BeTrue(), "%s: %v", proto, err2)
			Expect(exit.Code).To(Equal(3), proto)
			_ = inW.Close()
		}
	})

	It("refuses requests without credentials (401) and without rights (403), and accepts them once a Role grants them", func() {
		anonymous := rest.AnonymousClientConfig(admin.Config)
		_, err := readLogs(&agentclient.Endpoint{Node: nodeName, Config: anonymous}, ns, "logger", "count", nil)
		Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "%v", err)
		Expect(rawExec(anonymous, ns, "logger", "count")).To(Equal(http.StatusUnauthorized))

		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "viewer"}}
		Expect(k8sClient.Create(ctx, sa)).To(Succeed())
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "viewer", &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		saCfg := rest.AnonymousClientConfig(admin.Config)
		saCfg.BearerToken = tr.Status.Token
		saEP := &agentclient.Endpoint{Node: nodeName, Config: saCfg}

		_, err = readLogs(saEP, ns, "logger", "count", nil)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring(fmt.Sprintf(`User "system:serviceaccount:%s:viewer" cannot get resource "pods/log" in API group "core.skiff.dev" in the namespace "%s"`, ns, ns)))
		Expect(rawExec(saCfg, ns, "logger", "count")).To(Equal(http.StatusForbidden))

		By("granting pods/log and pods/exec of skiff pods in the namespace, and reading pods and nodes")
		Expect(k8sClient.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "debug"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"core.skiff.dev"}, Resources: []string{"pods"}, Verbs: []string{"get"}},
			{APIGroups: []string{"core.skiff.dev"}, Resources: []string{"pods/log"}, Verbs: []string{"get"}},
			{APIGroups: []string{"core.skiff.dev"}, Resources: []string{"pods/exec"}, Verbs: []string{"create"}},
		}})).To(Succeed())
		subject := []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "viewer"}}
		Expect(k8sClient.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "debug"},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "debug"}, Subjects: subject})).To(Succeed())
		nodeReader := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "e2e-node-reader-" + ns}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"core.skiff.dev"}, Resources: []string{"nodes"}, Verbs: []string{"get"}}}}
		Expect(k8sClient.Create(ctx, nodeReader)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), nodeReader) })
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: nodeReader.Name},
			RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: nodeReader.Name}, Subjects: subject}
		Expect(k8sClient.Create(ctx, crb)).To(Succeed())
		DeferCleanup(func() { _ = k8sClient.Delete(context.Background(), crb) })

		// Denials are cached for a second (--authorization-webhook-cache-unauthorized-ttl=1s).
		Eventually(func(g Gomega) {
			out, err := readLogs(saEP, ns, "logger", "count", &corev1.PodLogOptions{TailLines: ptr.To[int64](1)})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(out).To(HavePrefix("tick "))
		}, 20*time.Second, 500*time.Millisecond).Should(Succeed())

		By("running logs and exec as the ServiceAccount through the client, from the pod to its node's agent")
		userCfg := rest.AnonymousClientConfig(cp.Config)
		userCfg.BearerToken = tr.Status.Token
		uc, err := agentclient.New(userCfg)
		Expect(err).NotTo(HaveOccurred())
		rc, err := uc.Logs(ctx, ns, "logger", "", &corev1.PodLogOptions{TailLines: ptr.To[int64](1)})
		Expect(err).NotTo(HaveOccurred())
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(b)).To(HavePrefix("tick "))
		var out bytes.Buffer
		err = uc.Exec(ctx, ns, "logger", "count", &corev1.PodExecOptions{Command: []string{"sh", "-c", "echo $HOSTNAME; exit 4"}, Stdout: true},
			remotecommand.StreamOptions{Stdout: &out})
		var exit exec.CodeExitError
		Expect(errors.As(err, &exit)).To(BeTrue(), "%v", err)
		Expect(exit.Code).To(Equal(4))
		Expect(out.String()).To(Equal("logger\n"))

		By("still refusing another namespace's pods")
		other := newNamespace()
		createPod(other, "elsewhere", []corev1.Container{{Name: "app", Image: busyboxImage, Command: []string{"sleep", "3600"}}})
		_, err = readLogs(saEP, other, "elsewhere", "app", nil)
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
		Expect(rawExec(saCfg, other, "elsewhere", "app")).To(Equal(http.StatusForbidden))
	})
})
