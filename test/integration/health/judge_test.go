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
	// Observed: the status is about the current generation.
	Observed bool
	// Object is the object judged.
	Object *unstructured.Unstructured
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

// judge fetches obj afresh, as the API serves it, into obj and returns the
// verdicts of kstatus and of the Argo CD script on it, and whether its
// controller has reported on its current generation.
func judge(g Gomega, obj client.Object) verdict {
	gvk, err := apiutil.GVKForObject(obj, testScheme)
	g.Expect(err).NotTo(HaveOccurred())
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	g.Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), u)).To(Succeed())
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj)).To(Succeed())
	ks, _ := kstatus.Compute(u)
	health, msg := argoHealth(u)
	og, found, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	observed := (found && og == u.GetGeneration()) || (!found && len(conds) > 0)
	return verdict{Kstatus: ks, Argo: health, ArgoMessage: msg, Observed: observed, Object: u}
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
		g.Expect(last.Observed).To(BeTrue(), "the controller has reported on the current generation")
		g.Expect(last.Kstatus).To(Equal(want))
		g.Expect(last.Argo).To(Equal(wantArgo), "Argo CD message: %s", last.ArgoMessage)
	}).WithTimeout(45*time.Second).Should(Succeed(), "%T %s", obj, client.ObjectKeyFromObject(obj))
	checkConventions(last.Object, want)
}

// checkConventions checks the kstatus conventions on an object's status:
// observedGeneration and the Ready condition's generation are current, at
// most one of Reconciling and Stalled is True, and a Current object has
// neither while a not-Current one has exactly one.
func checkConventions(u *unstructured.Unstructured, verdict kstatus.Status) {
	gen := u.GetGeneration()
	raw, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	trueTypes := map[string]bool{}
	var ready map[string]any
	unscheduled := false
	for _, c := range raw {
		m := c.(map[string]any)
		if m["status"] == "True" {
			trueTypes[m["type"].(string)] = true
		}
		if m["type"] == conditions.Ready {
			ready = m
		}
		unscheduled = unscheduled || (m["type"] == "PodScheduled" && m["status"] == "False")
	}
	// Nodes are reported on by their agent, whatever their generation; a
	// pod no node fits has only the scheduler's word.
	if og, found, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); found || (u.GetKind() != "Node" && !unscheduled) {
		Expect(og).To(Equal(gen), "%s %s: status.observedGeneration", u.GetKind(), u.GetName())
	}
	if !unscheduled {
		Expect(ready).NotTo(BeNil(), "%s %s has a Ready condition", u.GetKind(), u.GetName())
		if u.GetKind() != "Node" {
			Expect(ready["observedGeneration"]).To(BeEquivalentTo(gen), "%s %s: Ready's observedGeneration", u.GetKind(), u.GetName())
		}
	}
	Expect(trueTypes[conditions.Reconciling] && trueTypes[conditions.Stalled]).To(BeFalse(), "Reconciling and Stalled at once")
	progress := trueTypes[conditions.Reconciling] || trueTypes[conditions.Stalled]
	Expect(progress).To(Equal(verdict != kstatus.StatusCurrent), "%s %s: conditions %v", u.GetKind(), u.GetName(), raw)
}
