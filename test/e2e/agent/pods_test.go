package agent_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + rand.String(6)}}
	Expect(k8sClient.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

func createPod(ns, name string, containers []corev1.Container, mutate ...func(*corev1alpha1.Pod)) *corev1alpha1.Pod {
	p := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			TerminationGracePeriodSeconds: ptr.To[int64](2),
			Containers:                    containers,
		},
	}
	for _, m := range mutate {
		m(p)
	}
	Expect(k8sClient.Create(ctx, p)).To(Succeed())
	return p
}

func get(p *corev1alpha1.Pod) func(g Gomega) *corev1alpha1.Pod {
	return func(g Gomega) *corev1alpha1.Pod {
		got := &corev1alpha1.Pod{}
		g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), got)).To(Succeed())
		return got
	}
}

func isReady(g Gomega, p *corev1alpha1.Pod) bool {
	return meta.IsStatusConditionTrue(get(p)(g).Status.Conditions, conditions.Ready)
}

func containerID(g Gomega, p *corev1alpha1.Pod, i int) string {
	got := get(p)(g)
	g.Expect(got.Status.ContainerStatuses).To(HaveLen(len(p.Spec.Containers)))
	id := got.Status.ContainerStatuses[i].ContainerID
	g.Expect(id).To(HavePrefix("containerd://"))
	return strings.TrimPrefix(id, "containerd://")
}

func httpGet(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func webContainer() corev1.Container {
	return corev1.Container{
		Name:    "web",
		Image:   busyboxImage,
		Command: []string{"sh", "-c", "mkdir -p /www && echo \"hello from $(POD_NAME)\" > /www/index.html && exec httpd -f -p 8080 -h /www"},
		Env:     []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
			PeriodSeconds: 1,
		},
	}
}

var _ = Describe("skiff-agent on containerd", Ordered, func() {
	var ns string
	BeforeAll(func() { ns = newNamespace() })

	It("runs a pod that serves HTTP on its pod IP", func() {
		start := time.Now()
		p := createPod(ns, "web", []corev1.Container{webContainer()})
		var ip string
		Eventually(func(g Gomega) {
			got := get(p)(g)
			g.Expect(got.Status.Phase).To(Equal(corev1.PodRunning))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, conditions.Ready)).To(BeTrue())
			g.Expect(got.Status.DisplayStatus).To(Equal("Running"))
			g.Expect(got.Status.Ready).To(Equal("1/1"))
			ip = got.Status.PodIP
		}, 60*time.Second, 100*time.Millisecond).Should(Succeed())
		GinkgoWriter.Printf("Pod web Ready %s after create (100 ms polling, 1 s readiness period)\n", time.Since(start).Round(10*time.Millisecond))
		Expect(ip).To(HavePrefix(subnet))
		body, err := httpGet(fmt.Sprintf("http://%s:8080/", ip))
		Expect(err).NotTo(HaveOccurred())
		Expect(body).To(Equal("hello from web\n"))

		got := get(p)(Default)
		Expect(got.Status.HostIP).To(Equal("127.0.0.1"))
		Expect(got.Status.QOSClass).To(Equal(corev1.PodQOSBestEffort))
		Expect(got.Status.ContainerStatuses[0].ImageID).NotTo(BeEmpty())
		Expect(got.Finalizers).To(ContainElement("core.skiff.dev/agent"))
	})

	It("runs a hostNetwork pod on the node's address", func() {
		// A port the kernel says is free: a random one could collide with the
		// API servers and etcds of suites running beside this one.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		port := l.Addr().(*net.TCPAddr).Port
		Expect(l.Close()).To(Succeed())
		c := corev1.Container{
			Name: "web", Image: busyboxImage,
			Command: []string{"sh", "-c", fmt.Sprintf("mkdir -p /www && echo host > /www/index.html && exec httpd -f -p 127.0.0.1:%d -h /www", port)},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}},
				PeriodSeconds: 1,
			},
		}
		p := createPod(ns, "hostnet", []corev1.Container{c}, func(p *corev1alpha1.Pod) { p.Spec.HostNetwork = true })
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		Expect(get(p)(Default).Status.PodIP).To(Equal("127.0.0.1"))
		Expect(httpGet(fmt.Sprintf("http://127.0.0.1:%d/", port))).To(Equal("host\n"))
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
	})

	It("pulls an image from a registry on 127.0.0.1 with imagePullPolicy Always", func() {
		if reg == nil {
			Skip("docker-registry is not installed: run hack/deps.sh (as root)")
		}
		image := reg.host + "/skiff/busybox:e2e"
		p := createPod(ns, "pulled", []corev1.Container{{Name: "app", Image: image, ImagePullPolicy: corev1.PullAlways, Command: []string{"sleep", "3600"}}})
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		cs := get(p)(Default).Status.ContainerStatuses[0]
		Expect(cs.Image).To(Equal(image))
		Expect(cs.ImageID).To(ContainSubstring("sha256:"))
	})

	It("flips readiness with the probe", func() {
		c := corev1.Container{
			Name: "app", Image: busyboxImage,
			Command: []string{"sh", "-c", "touch /tmp/ready && exec sleep 3600"},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
				PeriodSeconds: 1, FailureThreshold: 1,
			},
		}
		p := createPod(ns, "flip", []corev1.Container{c})
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		id := containerID(Default, p, 0)

		_, _, err := runtime.ExecSync(ctx, id, []string{"rm", "/tmp/ready"}, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 15*time.Second, 200*time.Millisecond).Should(BeFalse())
		Expect(get(p)(Default).Status.Ready).To(Equal("0/1"))

		_, _, err = runtime.ExecSync(ctx, id, []string{"touch", "/tmp/ready"}, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 15*time.Second, 200*time.Millisecond).Should(BeTrue())
	})

	It("backs a crashing container off into CrashLoopBackOff", func() {
		c := corev1.Container{Name: "crash", Image: busyboxImage, Command: []string{"sh", "-c", "echo dying; exit 3"},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError}
		p := createPod(ns, "crash", []corev1.Container{c})
		Eventually(func(g Gomega) {
			got := get(p)(g)
			g.Expect(got.Status.DisplayStatus).To(Equal("CrashLoopBackOff"))
			cs := got.Status.ContainerStatuses[0]
			g.Expect(cs.State.Waiting).NotTo(BeNil())
			g.Expect(cs.State.Waiting.Reason).To(Equal("CrashLoopBackOff"))
			g.Expect(cs.RestartCount).To(BeNumerically(">=", 1))
			g.Expect(cs.LastTerminationState.Terminated).NotTo(BeNil())
			g.Expect(cs.LastTerminationState.Terminated.ExitCode).To(BeEquivalentTo(3))
			g.Expect(cs.LastTerminationState.Terminated.Reason).To(Equal("Error"))
			g.Expect(cs.LastTerminationState.Terminated.Message).To(Equal("dying"))
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
		// The back-off holds the restart count for about 10s.
		restarts := get(p)(Default).Status.ContainerStatuses[0].RestartCount
		Consistently(func(g Gomega) int32 {
			got := get(p)(g)
			g.Expect(got.Status.ContainerStatuses).To(HaveLen(1))
			return got.Status.ContainerStatuses[0].RestartCount
		}, 5*time.Second, time.Second).Should(Equal(restarts))
		Expect(get(p)(Default).Status.Phase).To(Equal(corev1.PodRunning))
	})

	DescribeTable("ends run-to-completion pods in the right phase",
		func(policy corev1.RestartPolicy, script string, phase corev1.PodPhase, display string) {
			name := "end-" + strings.ToLower(string(policy)) + "-" + rand.String(4)
			p := createPod(ns, name, []corev1.Container{{Name: "job", Image: busyboxImage, Command: []string{"sh", "-c", script}}},
				func(p *corev1alpha1.Pod) { p.Spec.RestartPolicy = policy })
			Eventually(func(g Gomega) {
				got := get(p)(g)
				g.Expect(got.Status.Phase).To(Equal(phase))
				g.Expect(got.Status.DisplayStatus).To(Equal(display))
			}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
		},
		Entry("Never, exit 0: Succeeded", corev1.RestartPolicyNever, "exit 0", corev1.PodSucceeded, "Completed"),
		Entry("Never, exit 2: Failed", corev1.RestartPolicyNever, "exit 2", corev1.PodFailed, "Error"),
		Entry("OnFailure, exit 0: Succeeded", corev1.RestartPolicyOnFailure, "exit 0", corev1.PodSucceeded, "Completed"),
	)

	It("runs init containers in order before the containers", func() {
		vol := corev1.Volume{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
		mount := []corev1.VolumeMount{{Name: "work", MountPath: "/work"}}
		p := createPod(ns, "init", []corev1.Container{{
			Name: "main", Image: busyboxImage, VolumeMounts: mount,
			Command: []string{"sh", "-c", "echo main >> /work/log && exec sleep 3600"},
		}}, func(p *corev1alpha1.Pod) {
			p.Spec.Volumes = []corev1.Volume{vol}
			p.Spec.InitContainers = []corev1.Container{
				{Name: "first", Image: busyboxImage, VolumeMounts: mount, Command: []string{"sh", "-c", "sleep 1; echo first >> /work/log"}},
				{Name: "second", Image: busyboxImage, VolumeMounts: mount, Command: []string{"sh", "-c", "echo second >> /work/log"}},
			}
		})
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		out, _, err := runtime.ExecSync(ctx, containerID(Default, p, 0), []string{"cat", "/work/log"}, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(out)).To(Equal("first\nsecond\nmain\n"))
		got := get(p)(Default)
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, corev1alpha1.PodInitialized)).To(BeTrue())
		for _, s := range got.Status.InitContainerStatuses {
			Expect(s.State.Terminated).NotTo(BeNil(), s.Name)
			Expect(s.State.Terminated.Reason).To(Equal("Completed"), s.Name)
		}
	})

	It("gives env and volumes from ConfigMaps and Secrets, and a ConfigMap update reaches the file", func() {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "settings"}, Data: map[string]string{"color": "blue", "size": "L"}}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret")}}
		Expect(k8sClient.Create(ctx, cm)).To(Succeed())
		Expect(k8sClient.Create(ctx, sec)).To(Succeed())
		c := corev1.Container{
			Name: "app", Image: busyboxImage, Command: []string{"sleep", "3600"},
			Env: []corev1.EnvVar{
				{Name: "COLOR", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}, Key: "color"}}},
				{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
				{Name: "GREETING", Value: "color=$(COLOR)"},
			},
			EnvFrom:      []corev1.EnvFromSource{{Prefix: "CM_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
			VolumeMounts: []corev1.VolumeMount{{Name: "cfg", MountPath: "/etc/cfg"}, {Name: "sec", MountPath: "/etc/sec"}},
		}
		p := createPod(ns, "config", []corev1.Container{c}, func(p *corev1alpha1.Pod) {
			p.Spec.Volumes = []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
			}
		})
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		id := containerID(Default, p, 0)
		exec := func(cmd ...string) string {
			out, _, err := runtime.ExecSync(ctx, id, cmd, 5*time.Second)
			Expect(err).NotTo(HaveOccurred())
			return string(out)
		}
		env := exec("env")
		Expect(env).To(ContainSubstring("COLOR=blue\n"))
		Expect(env).To(ContainSubstring("PASSWORD=s3cret\n"))
		Expect(env).To(ContainSubstring("GREETING=color=blue\n"))
		Expect(env).To(ContainSubstring("CM_size=L\n"))
		Expect(exec("cat", "/etc/cfg/color")).To(Equal("blue"))
		Expect(exec("cat", "/etc/sec/password")).To(Equal("s3cret"))

		cm.Data["color"] = "green"
		Expect(k8sClient.Update(ctx, cm)).To(Succeed())
		Eventually(func() string {
			out, _, _ := runtime.ExecSync(ctx, id, []string{"cat", "/etc/cfg/color"}, 5*time.Second)
			return string(out)
		}, 60*time.Second, time.Second).Should(Equal("green"))
	})

	It("reports ErrImagePull, then ImagePullBackOff, for an image it cannot pull", func() {
		// Nothing listens on port 9 of the loopback address: the pull fails at once.
		p := createPod(ns, "badimage", []corev1.Container{{Name: "app", Image: "127.0.0.1:9/skiff/missing:1"}})
		reason := func(g Gomega) string {
			got := get(p)(g)
			g.Expect(got.Status.ContainerStatuses).To(HaveLen(1))
			g.Expect(got.Status.ContainerStatuses[0].State.Waiting).NotTo(BeNil())
			return got.Status.ContainerStatuses[0].State.Waiting.Reason
		}
		Eventually(reason, 30*time.Second, 50*time.Millisecond).Should(Equal("ErrImagePull"))
		Eventually(reason, 30*time.Second, 100*time.Millisecond).Should(Equal("ImagePullBackOff"))
		got := get(p)(Default)
		Expect(got.Status.Phase).To(Equal(corev1.PodPending))
		Expect(got.Status.DisplayStatus).To(Equal("ImagePullBackOff"))
	})

	It("respects the grace period and runs preStop on deletion", func() {
		hostDir := filepath.Join(workDir, "prestop")
		Expect(os.MkdirAll(hostDir, 0o755)).To(Succeed())
		c := corev1.Container{
			Name: "stubborn", Image: busyboxImage,
			// PID 1 ignores SIGTERM: only SIGKILL at the end of the grace period stops it.
			Command:      []string{"sh", "-c", "trap '' TERM; while true; do sleep 0.2; done"},
			VolumeMounts: []corev1.VolumeMount{{Name: "out", MountPath: "/out"}},
			Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
				Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo prestop > /out/prestop"}},
			}},
		}
		p := createPod(ns, "graceful", []corev1.Container{c}, func(p *corev1alpha1.Pod) {
			p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](4)
			p.Spec.Volumes = []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}}
		})
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		start := time.Now()
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		Eventually(func(g Gomega) string {
			return get(p)(g).Status.DisplayStatus
		}, 5*time.Second, 100*time.Millisecond).Should(Equal("Terminating"))
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), &corev1alpha1.Pod{}))
		}, 30*time.Second, 100*time.Millisecond).Should(BeTrue())
		took := time.Since(start)
		GinkgoWriter.Printf("Deletion with a 4s grace period took %s\n", took)
		Expect(took).To(BeNumerically(">=", 3500*time.Millisecond))
		Expect(took).To(BeNumerically("<", 15*time.Second))
		Expect(os.ReadFile(filepath.Join(hostDir, "prestop"))).To(Equal([]byte("prestop\n")))
	})

	It("restarts a failing container under OnFailure and counts the restarts", func() {
		c := corev1.Container{Name: "flaky", Image: busyboxImage, Command: []string{"sh", "-c", "exit 1"}}
		p := createPod(ns, "onfailure", []corev1.Container{c}, func(p *corev1alpha1.Pod) { p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure })
		Eventually(func(g Gomega) int32 {
			got := get(p)(g)
			g.Expect(got.Status.ContainerStatuses).To(HaveLen(1))
			return got.Status.ContainerStatuses[0].RestartCount
		}, 60*time.Second, 200*time.Millisecond).Should(BeNumerically(">=", 1))
		Expect(get(p)(Default).Status.Phase).To(Equal(corev1.PodRunning))
	})

	It("restarts a container whose liveness probe fails", func() {
		c := corev1.Container{
			Name: "app", Image: busyboxImage,
			Command: []string{"sh", "-c", "touch /tmp/alive && exec sleep 3600"},
			LivenessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/alive"}}},
				PeriodSeconds: 1, FailureThreshold: 1,
			},
		}
		p := createPod(ns, "liveness", []corev1.Container{c})
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		_, _, err := runtime.ExecSync(ctx, containerID(Default, p, 0), []string{"rm", "/tmp/alive"}, 5*time.Second)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func(g Gomega) {
			cs := get(p)(g).Status.ContainerStatuses[0]
			g.Expect(cs.RestartCount).To(BeEquivalentTo(1))
			g.Expect(cs.State.Running).NotTo(BeNil())
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("mounts a Memory emptyDir as tmpfs and reports the termination message", func() {
		c := corev1.Container{
			Name: "app", Image: busyboxImage,
			Command:      []string{"sh", "-c", "grep ' /cache ' /proc/mounts > /dev/termination-log; exit 4"},
			VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}},
		}
		limit := resource.MustParse("16Mi")
		p := createPod(ns, "tmpfs", []corev1.Container{c}, func(p *corev1alpha1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Spec.Volumes = []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &limit}}}}
		})
		Eventually(func(g Gomega) {
			got := get(p)(g)
			g.Expect(got.Status.Phase).To(Equal(corev1.PodFailed))
			term := got.Status.ContainerStatuses[0].State.Terminated
			g.Expect(term).NotTo(BeNil())
			g.Expect(term.ExitCode).To(BeEquivalentTo(4))
			g.Expect(term.Message).To(ContainSubstring("tmpfs /cache tmpfs"))
			g.Expect(term.Message).To(ContainSubstring("size=16384k"))
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("starts a native sidecar before the containers and keeps it running", func() {
		always := corev1.ContainerRestartPolicyAlways
		p := createPod(ns, "sidecar", []corev1.Container{{Name: "main", Image: busyboxImage, Command: []string{"sleep", "3600"}}},
			func(p *corev1alpha1.Pod) {
				p.Spec.InitContainers = []corev1.Container{{Name: "proxy", Image: busyboxImage, Command: []string{"sleep", "3600"}, RestartPolicy: &always}}
			})
		Eventually(func(g Gomega) {
			got := get(p)(g)
			g.Expect(got.Status.Ready).To(Equal("2/2"))
			g.Expect(got.Status.DisplayStatus).To(Equal("Running"))
			g.Expect(got.Status.InitContainerStatuses[0].State.Running).NotTo(BeNil())
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("keeps containers running across an agent restart", func() {
		p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		before := get(p)(Default)
		Expect(before.Status.Phase).To(Equal(corev1.PodRunning))
		id := before.Status.ContainerStatuses[0].ContainerID

		doomed := createPod(ns, "doomed", []corev1.Container{{Name: "app", Image: busyboxImage, Command: []string{"sleep", "3600"}}})
		Eventually(func(g Gomega) bool { return isReady(g, doomed) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		doomedUID := get(doomed)(Default).UID

		By("killing the agent with SIGKILL, deleting a pod meanwhile, and starting the agent again")
		stopAgent(syscall.SIGKILL)
		gone := get(doomed)(Default)
		gone.Finalizers = nil
		Expect(k8sClient.Update(ctx, gone)).To(Succeed())
		Expect(k8sClient.Delete(ctx, gone)).To(Succeed())
		startAgent()
		Eventually(func(g Gomega) {
			containers, err := runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{cri.LabelPodUID: string(doomedUID)}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(containers).To(BeEmpty())
		}, 30*time.Second, 200*time.Millisecond).Should(Succeed())
		Consistently(func(g Gomega) {
			got := get(p)(g)
			g.Expect(got.Status.ContainerStatuses[0].ContainerID).To(Equal(id))
			g.Expect(got.Status.ContainerStatuses[0].RestartCount).To(BeZero())
		}, 10*time.Second, time.Second).Should(Succeed())
		Eventually(func(g Gomega) bool { return isReady(g, p) }, 30*time.Second, 200*time.Millisecond).Should(BeTrue())
		body, err := httpGet(fmt.Sprintf("http://%s:8080/", get(p)(Default).Status.PodIP))
		Expect(err).NotTo(HaveOccurred())
		Expect(body).To(Equal("hello from web\n"))
	})

	It("restarts a managed containerd that died, keeping the containers", func() {
		p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		id := get(p)(Default).Status.ContainerStatuses[0].ContainerID
		pidFile := filepath.Join(rootDir, "containerd", "containerd.pid")
		b, err := os.ReadFile(pidFile)
		Expect(err).NotTo(HaveOccurred())
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		Expect(err).NotTo(HaveOccurred())
		By("killing the containerd the agent started, by its PID")
		Expect(syscall.Kill(pid, syscall.SIGKILL)).To(Succeed())
		Eventually(func() string {
			b, _ := os.ReadFile(pidFile)
			return strings.TrimSpace(string(b))
		}, 30*time.Second, 200*time.Millisecond).ShouldNot(Equal(strconv.Itoa(pid)))
		after := createPod(ns, "after-restart", []corev1.Container{{Name: "app", Image: busyboxImage, Command: []string{"sleep", "3600"}}})
		Eventually(func(g Gomega) bool { return isReady(g, after) }, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		got := get(p)(Default)
		Expect(got.Status.ContainerStatuses[0].ContainerID).To(Equal(id))
		Expect(got.Status.ContainerStatuses[0].RestartCount).To(BeZero())
		Expect(httpGet(fmt.Sprintf("http://%s:8080/", got.Status.PodIP))).To(Equal("hello from web\n"))
	})

	It("removes the containers and the sandbox of a deleted pod before the pod goes", func() {
		p := &corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}
		uid := get(p)(Default).UID
		Expect(k8sClient.Delete(ctx, p)).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx, client.ObjectKeyFromObject(p), &corev1alpha1.Pod{}))
		}, 60*time.Second, 200*time.Millisecond).Should(BeTrue())
		containers, err := runtime.ListContainers(ctx, &runtimeapi.ContainerFilter{LabelSelector: map[string]string{cri.LabelPodUID: string(uid)}})
		Expect(err).NotTo(HaveOccurred())
		Expect(containers).To(BeEmpty())
		sandboxes, err := runtime.ListPodSandbox(ctx, &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{cri.LabelPodUID: string(uid)}})
		Expect(err).NotTo(HaveOccurred())
		Expect(sandboxes).To(BeEmpty())
	})
})
