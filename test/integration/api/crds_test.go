package api_test

import (
	"encoding/json"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/config"
)

var _ = Describe("CRDs", func() {
	It("are all established, with the category skiff and non-colliding short names", func() {
		crds, err := config.CRDs()
		Expect(err).NotTo(HaveOccurred())
		Expect(crds).To(HaveLen(14))
		coreShortNames := map[string]bool{"po": true, "no": true, "svc": true, "ep": true, "pv": true, "pvc": true,
			"rs": true, "deploy": true, "sts": true, "ds": true, "cj": true, "sc": true, "ns": true, "cm": true}
		seen := map[string]bool{}
		for _, want := range crds {
			got := &apiextensionsv1.CustomResourceDefinition{}
			Expect(k8sClient.Get(ctx, client.ObjectKey{Name: want.Name}, got)).To(Succeed())
			Expect(isEstablished(got)).To(BeTrue(), "CRD %s is not established: %v", got.Name, got.Status.Conditions)
			Expect(got.Spec.Names.Categories).To(ContainElement("skiff"), got.Name)
			for _, s := range got.Spec.Names.ShortNames {
				Expect(coreShortNames).NotTo(HaveKey(s), "%s short name %s collides with a core one", got.Name, s)
				Expect(seen).NotTo(HaveKey(s), "short name %s used twice", s)
				seen[s] = true
			}
		}
	})

	It("each fit in the last-applied annotation of client-side apply", func() {
		crds, err := config.CRDs()
		Expect(err).NotTo(HaveOccurred())
		for _, crd := range crds {
			raw, err := json.Marshal(crd)
			Expect(err).NotTo(HaveOccurred())
			Expect(len(raw)).To(BeNumerically("<", 256*1024-4096), "%s is %d bytes", crd.Name, len(raw))
		}
	})
})

func isEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}
