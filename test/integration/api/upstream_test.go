package api_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/internal/convert"
)

var _ = Describe("upstream manifests", func() {
	files, _ := filepath.Glob("testdata/upstream/*.yaml")

	It("are at least ten", func() {
		Expect(len(files)).To(BeNumerically(">=", 10))
	})

	for _, file := range files {
		It("are accepted after changing apiVersion: "+filepath.Base(file), func() {
			raw, err := os.ReadFile(file)
			Expect(err).NotTo(HaveOccurred())
			docs, err := convert.Manifests(raw, convert.ToSkiff)
			Expect(err).NotTo(HaveOccurred())
			ns := newNamespace("upstream")
			for _, doc := range docs {
				obj := fromYAML(string(doc), ns)
				Expect(obj.GetAPIVersion()).To(HaveSuffix(".skiff.dev/v1alpha1"), "every upstream kind in testdata has a skiff counterpart")
				Expect(k8sClient.Create(ctx, obj)).To(Succeed(), "%s %s", obj.GetKind(), obj.GetName())

				// Nothing the user wrote was pruned: the stored spec equals the manifest's.
				stored := &unstructured.Unstructured{}
				stored.SetGroupVersionKind(obj.GroupVersionKind())
				Expect(k8sClient.Get(ctx, client.ObjectKeyFromObject(obj), stored)).To(Succeed())
				want := fromYAML(string(doc), ns)
				delete(want.Object, "metadata")
				Expect(missingFields(want.Object, stored.Object, "")).To(BeEmpty(), "%s %s: fields lost or changed on the way in", obj.GetKind(), obj.GetName())
				if !clusterScoped[obj.GetKind()] {
					continue
				}
				Expect(k8sClient.Delete(ctx, obj)).To(Succeed())
			}
		})
	}

	It("apply from a YAML stream with kubectl after `skiff convert`", func() {
		raw, err := os.ReadFile("testdata/upstream/07-services.yaml")
		Expect(err).NotTo(HaveOccurred())
		docs, err := convert.Manifests(raw, convert.ToSkiff)
		Expect(err).NotTo(HaveOccurred())
		ns := newNamespace("kubectl")
		out, err := kubectl([]byte(strings.Join(bytesToStrings(docs), "---\n")), "apply", "-n", ns, "-f", "-")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("service.core.skiff.dev/web-nodeport created"))
	})
})

// missingFields lists the paths of want that got does not hold with the
// same value. got may hold more (defaults the API server filled in).
func missingFields(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		var missing []string
		for k, v := range w {
			missing = append(missing, missingFields(v, g[k], path+"."+k)...)
		}
		return missing
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{path}
		}
		var missing []string
		for i := range w {
			missing = append(missing, missingFields(w[i], g[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return missing
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return []string{fmt.Sprintf("%s: want %v, got %v", path, want, got)}
		}
		return nil
	}
}

func bytesToStrings(docs [][]byte) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = string(d)
	}
	return out
}
