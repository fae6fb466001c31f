package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

func TestCheckPrerequisites(t *testing.T) {
	all := func(string) (string, error) { return "/usr/bin/x", nil }
	none := func(string) (string, error) { return "", errors.New("not found") }
	if _, err := os.Stat("/usr/lib/cni/bridge"); err == nil {
		if err := checkPrerequisites(all, 0); err != nil {
			t.Errorf("everything present as root: %v", err)
		}
	}
	err := checkPrerequisites(all, 1000)
	if err == nil || !strings.Contains(err.Error(), "must run as root") {
		t.Errorf("not root: got %v", err)
	}
	// Commands Debian keeps in /usr/sbin count as present even when PATH lacks them.
	err = checkPrerequisites(none, 0)
	if _, serr := os.Stat("/usr/sbin/runc"); serr != nil {
		if err == nil || !strings.Contains(err.Error(), "apt-get install -y") || !strings.Contains(err.Error(), "runc") {
			t.Errorf("missing runc: got %v", err)
		}
	}
	if _, serr := os.Stat("/usr/sbin/containerd"); serr != nil {
		if err == nil || !strings.Contains(err.Error(), "containerd (runs the node's containers)") {
			t.Errorf("missing containerd: got %v", err)
		}
	}
}

func TestControlPlaneAssetsSaysWhereFrom(t *testing.T) {
	dir := t.TempDir()
	_, err := controlPlaneAssets(dir)
	if err == nil {
		t.Fatal("empty directory accepted")
	}
	for _, want := range []string{"kube-apiserver, etcd, kube-controller-manager, kubectl", dir, "hack/envtest.sh", "--assets-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kube-controller-manager", "kubectl"} {
		if err := os.WriteFile(filepath.Join(dir, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := controlPlaneAssets(dir); err != nil || got != dir {
		t.Errorf("complete directory: got %q, %v", got, err)
	}
}

func TestSplitWords(t *testing.T) {
	cases := map[string][]string{
		`httpd -f -p 8080 -h /www`:           {"httpd", "-f", "-p", "8080", "-h", "/www"},
		`sh -c 'echo "hi there" && sleep 1'`: {"sh", "-c", `echo "hi there" && sleep 1`},
		`a\ b "c d"  e`:                      {"a b", "c d", "e"},
		`x ""`:                               {"x", ""},
	}
	for in, want := range cases {
		got, err := splitWords(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", in, diff)
		}
	}
	if _, err := splitWords(`sh -c 'unterminated`); err == nil {
		t.Error("unterminated quote accepted")
	}
}

func TestCheckImageRef(t *testing.T) {
	for ref, wantErr := range map[string]string{
		"skiff.local/hello:v1":     "",
		"localhost:5000/web:1.0":   "",
		"hello":                    "has no tag",
		"localhost:5000/web":       "has no tag",
		"skiff.local/hello:latest": "other than latest",
		"a b:v1":                   "want NAME:TAG",
	} {
		err := checkImageRef(ref)
		if (wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: got %v, want %q", ref, err, wantErr)
		}
	}
}

func TestParseWorkloadKind(t *testing.T) {
	for in, want := range map[string]workloadKind{
		"deployment": kindDeployment, "deploy": kindDeployment, "sdeploy": kindDeployment, "deployments.apps.skiff.dev": kindDeployment,
		"sts": kindStatefulSet, "StatefulSet": kindStatefulSet, "ds": kindDaemonSet, "daemonsets.apps": kindDaemonSet,
	} {
		got, err := parseWorkloadKind(in)
		if err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseWorkloadKind("replicaset"); err == nil {
		t.Error("replicaset accepted: it has no rollout")
	}
	if k, n, err := splitResourceArgs([]string{"deploy", "web"}); err != nil || k != "deploy" || n != "web" {
		t.Errorf("TYPE NAME: %v %v %v", k, n, err)
	}
	if _, _, err := splitResourceArgs([]string{"web"}); err == nil {
		t.Error("a bare name accepted")
	}
}

func TestPickRevision(t *testing.T) {
	revs := []revision{{number: 1}, {number: 2}, {number: 3}}
	if r, err := pickRevision(revs, 0); err != nil || r.number != 2 {
		t.Errorf("previous: %v %v", r, err)
	}
	if r, err := pickRevision(revs, 1); err != nil || r.number != 1 {
		t.Errorf("to 1: %v %v", r, err)
	}
	if _, err := pickRevision(revs, 7); err == nil || !strings.Contains(err.Error(), "unable to find specified revision 7") {
		t.Errorf("to 7: %v", err)
	}
	if _, err := pickRevision(revs[:1], 0); err == nil {
		t.Error("a single revision has no previous one")
	}
}

func TestPrintNodes(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := func(name string, ready metav1.ConditionStatus, unschedulable bool, lbls map[string]string) corev1alpha1.Node {
		node := corev1alpha1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls, CreationTimestamp: metav1.NewTime(now.Add(-90 * time.Minute))}}
		node.Spec.Unschedulable = unschedulable
		if ready != "" {
			node.Status.Conditions = []metav1.Condition{{Type: conditions.Ready, Status: ready}}
		}
		node.Status.NodeInfo = corev1.NodeSystemInfo{KubeletVersion: "v0.1.0-skiff", OSImage: "Debian GNU/Linux 12 (bookworm)", KernelVersion: "6.1.0", ContainerRuntimeVersion: "containerd://1.6.20"}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.2"}}
		return node
	}
	nodes := []corev1alpha1.Node{
		n("a", metav1.ConditionTrue, false, map[string]string{"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge"}),
		n("b", metav1.ConditionFalse, true, nil),
		n("c", "", false, nil),
	}
	var out bytes.Buffer
	if err := printNodes(&out, nodes, false, now); err != nil {
		t.Fatal(err)
	}
	want := `NAME   STATUS                        ROLES                AGE   VERSION
a      Ready                         control-plane,edge   90m   v0.1.0-skiff
b      NotReady,SchedulingDisabled   <none>               90m   v0.1.0-skiff
c      Unknown                       <none>               90m   v0.1.0-skiff
`
	if diff := cmp.Diff(want, out.String()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	out.Reset()
	if err := printNodes(&out, nodes[:1], true, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "INTERNAL-IP") || !strings.Contains(out.String(), "192.0.2.2") || !strings.Contains(out.String(), "containerd://1.6.20") {
		t.Errorf("wide output lacks columns:\n%s", out.String())
	}
}

func TestPlanDrain(t *testing.T) {
	pod := func(name string, controller string, phase corev1.PodPhase, emptyDir bool) corev1alpha1.Pod {
		p := corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
		if controller != "" {
			p.OwnerReferences = []metav1.OwnerReference{{Kind: controller, Name: "owner", Controller: ptrTrue()}}
		}
		p.Status.Phase = phase
		if emptyDir {
			p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}
		return p
	}
	pods := []corev1alpha1.Pod{
		pod("rs", "ReplicaSet", corev1.PodRunning, false),
		pod("ds", "DaemonSet", corev1.PodRunning, false),
		pod("bare", "", corev1.PodRunning, false),
		pod("scratch", "ReplicaSet", corev1.PodRunning, true),
		pod("done", "", corev1.PodSucceeded, true),
	}
	names := func(ps []corev1alpha1.Pod) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return out
	}
	exists := func(string, string) bool { return true }

	p := planDrain(pods, drainOptions{}, exists)
	if len(p.errors) != 3 {
		t.Errorf("defaults: want refusals for the DaemonSet, bare and emptyDir pods, got %q", p.errors)
	}
	p = planDrain(pods, drainOptions{ignoreDaemonSets: true, force: true, deleteEmptyDirData: true}, exists)
	if len(p.errors) != 0 {
		t.Errorf("all flags: unexpected refusals %q", p.errors)
	}
	if diff := cmp.Diff([]string{"rs", "bare", "scratch", "done"}, names(p.evict)); diff != "" {
		t.Errorf("evicted (-want +got):\n%s", diff)
	}
	if len(p.warnings) != 3 || !strings.Contains(p.warnings[0], "ignoring DaemonSet-managed Pods: ns/ds") {
		t.Errorf("warnings: %q", p.warnings)
	}
	// A pod of a DaemonSet that is gone is an orphan: --force evicts it.
	p = planDrain(pods[1:2], drainOptions{force: true}, func(string, string) bool { return false })
	if diff := cmp.Diff([]string{"ds"}, names(p.evict)); diff != "" || len(p.errors) != 0 {
		t.Errorf("orphaned DaemonSet pod: evict %v, errors %q", names(p.evict), p.errors)
	}
}

func ptrTrue() *bool { b := true; return &b }

func TestProcStart(t *testing.T) {
	self := processOf(os.Getpid(), "test")
	if self.Start == 0 || !self.alive() {
		t.Fatalf("this process: %+v alive=%v", self, self.alive())
	}
	if (process{PID: self.PID, Start: self.Start + 1}).alive() {
		t.Error("a different start time must not count as the same process")
	}
}

func TestPickPod(t *testing.T) {
	at := func(name string, phase corev1.PodPhase, minutes int) corev1alpha1.Pod {
		p := corev1alpha1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(0, 0).Add(time.Duration(minutes) * time.Minute))}}
		p.Status.Phase = phase
		return p
	}
	got, err := pickPod([]corev1alpha1.Pod{at("pending-old", corev1.PodPending, 1), at("running-new", corev1.PodRunning, 9), at("running-old", corev1.PodRunning, 5)}, "deployment/web")
	if err != nil || got != "running-old" {
		t.Errorf("got %q, %v; want the oldest running pod", got, err)
	}
	if _, err := pickPod(nil, "deployment/web"); err == nil || !strings.Contains(err.Error(), "deployment/web has no pods") {
		t.Errorf("no pods: %v", err)
	}
}
