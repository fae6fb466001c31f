package health_test

import (
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/gomega"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/skiff-dev/skiff/api/conditions"
	"github.com/skiff-dev/skiff/internal/kstatus"
)

// healthScript is the Argo CD health check shipped in config/argocd.
var healthScript = func() string {
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "config", "argocd", "health.lua"))
	if err != nil {
		panic(err)
	}
	return string(raw)
}()

// verdict is how kstatus and Argo CD judge one object.
type verdict struct {
	Kstatus     kstatus.Status
	Argo        string
	ArgoMessage string
}

// toLua converts a decoded JSON value the way Argo CD hands objects to its
// health scripts: objects and arrays become tables (arrays 1-based).
func toLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := L.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(L, e))
		}
		return t
	case []any:
		t := L.NewTable()
		for i, e := range v {
			t.RawSetInt(i+1, toLua(L, e))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case nil:
		return lua.LNil
	}
	panic("unexpected JSON value")
}

// argoHealth runs the health script on an object as Argo CD does: the
// object in the global obj, the script returning {status, message}.
func argoHealth(u *unstructured.Unstructured) (string, string) {
	L := lua.NewState()
	defer L.Close()
	L.SetGlobal("obj", toLua(L, u.Object))
	Expect(L.DoString(healthScript)).To(Succeed())
	hs, ok := L.Get(-1).(*lua.LTable)
	Expect(ok).To(BeTrue(), "the health script must return a table")
	return hs.RawGetString("status").String(), hs.RawGetString("message").String()
}

// unstructuredOf returns obj as the API returns it, with its kind.
func unstructuredOf(obj client.Object) *unstructured.Unstructured {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{Object: m}
	gvk, err := apiutil.GVKForObject(obj, testScheme)
	Expect(err).NotTo(HaveOccurred())
	u.SetGroupVersionKind(gvk)
	return u
}

// judge fetches obj afresh and returns the verdicts of kstatus and of the
// Argo CD script on it.
func judge(g Gomega, obj client.Object) verdict {
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
	u := unstructuredOf(obj)
	ks, _ := kstatus.Compute(u)
	health, msg := argoHealth(u)
	return verdict{Kstatus: ks, Argo: health, ArgoMessage: msg}
}

// argoFor is what Argo CD must say for a kstatus verdict.
var argoFor = map[kstatus.Status]string{
	kstatus.StatusCurrent: "Healthy", kstatus.StatusInProgress: "Progressing", kstatus.StatusFailed: "Degraded",
}

// expectHealth waits until kstatus says want and the Argo CD script agrees
// (argo overrides what it must say, e.g. Suspended), then checks the
// conventions on that status.
func expectHealth(obj client.Object, want kstatus.Status, argo ...string) {
	wantArgo := argoFor[want]
	if len(argo) > 0 {
		wantArgo = argo[0]
	}
	var last verdict
	Eventually(func(g Gomega) {
		last = judge(g, obj)
		g.Expect(last.Kstatus).To(Equal(want))
		g.Expect(last.Argo).To(Equal(wantArgo), "Argo CD message: %s", last.ArgoMessage)
	}).WithTimeout(45*time.Second).Should(Succeed(), "%T %s", obj, client.ObjectKeyFromObject(obj))
	checkConventions(unstructuredOf(obj), want)
}

// checkConventions checks the kstatus conventions on an object's status:
// observedGeneration and the Ready condition's generation are current, at
// most one of Reconciling and Stalled is True, and a Current object has
// neither while a not-Current one has exactly one.
func checkConventions(u *unstructured.Unstructured, verdict kstatus.Status) {
	gen := u.GetGeneration()
	if og, found, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); found || u.GetKind() != "Node" {
		Expect(og).To(Equal(gen), "%s %s: status.observedGeneration", u.GetKind(), u.GetName())
	}
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	trueTypes := map[string]bool{}
	var ready map[string]any
	for _, c := range raw {
		m := c.(map[string]any)
		if m["status"] == "True" {
			trueTypes[m["type"].(string)] = true
		}
		if m["type"] == conditions.Ready {
			ready = m
		}
	}
	Expect(ready).NotTo(BeNil(), "%s %s has a Ready condition", u.GetKind(), u.GetName())
	if u.GetKind() != "Node" {
		Expect(ready["observedGeneration"]).To(BeEquivalentTo(gen), "%s %s: Ready's observedGeneration", u.GetKind(), u.GetName())
	}
	Expect(trueTypes[conditions.Reconciling] && trueTypes[conditions.Stalled]).To(BeFalse(), "Reconciling and Stalled at once")
	progress := trueTypes[conditions.Reconciling] || trueTypes[conditions.Stalled]
	Expect(progress).To(Equal(verdict != kstatus.StatusCurrent), "%s %s: conditions %v", u.GetKind(), u.GetName(), raw)
}
