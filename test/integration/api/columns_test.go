package api_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// upstreamColumns are the columns `kubectl get` prints for each upstream
// kind after NAME (and -o wide's, after the bar), as kubectl v1.32 prints
// them, less what a CRD's JSONPath printer columns cannot compute. Those
// gaps are: Node ROLES (from label keys; `kubectl skiff get nodes` prints
// it), the "(5m ago)" of a pod's RESTARTS, a pod's READINESS GATES count,
// a Job's DURATION, a PersistentVolume's VOLUMEATTRIBUTESCLASS (not
// supported by skiff) and CLAIM as namespace/name, and the label-selector
// formatting of SELECTOR.
var upstreamColumns = map[string]string{
	"pods.core.skiff.dev":                   "READY STATUS RESTARTS AGE | IP NODE NOMINATED NODE",
	"nodes.core.skiff.dev":                  "STATUS AGE VERSION | INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME",
	"services.core.skiff.dev":               "TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE | SELECTOR",
	"endpointslices.core.skiff.dev":         "ADDRESSTYPE PORTS ENDPOINTS AGE",
	"persistentvolumes.core.skiff.dev":      "CAPACITY ACCESS MODES RECLAIM POLICY STATUS CLAIM STORAGECLASS REASON AGE | VOLUMEMODE",
	"persistentvolumeclaims.core.skiff.dev": "STATUS VOLUME CAPACITY ACCESS MODES STORAGECLASS AGE | VOLUMEMODE",
	"replicasets.apps.skiff.dev":            "DESIRED CURRENT READY AGE | CONTAINERS IMAGES SELECTOR",
	"deployments.apps.skiff.dev":            "READY UP-TO-DATE AVAILABLE AGE | CONTAINERS IMAGES SELECTOR",
	"statefulsets.apps.skiff.dev":           "READY AGE | CONTAINERS IMAGES",
	"daemonsets.apps.skiff.dev":             "DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE | CONTAINERS IMAGES",
	"jobs.batch.skiff.dev":                  "STATUS COMPLETIONS AGE | CONTAINERS IMAGES",
	"cronjobs.batch.skiff.dev":              "SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE | CONTAINERS IMAGES",
	"storageclasses.storage.skiff.dev":      "PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE",
	"poddisruptionbudgets.policy.skiff.dev": "MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE | HEALTHY DESIRED EXPECTED",
}

var _ = Describe("Printer columns", func() {
	It("show what kubectl get shows for the upstream kinds, in its order", func() {
		var list apiextensionsv1.CustomResourceDefinitionList
		Expect(k8sClient.List(ctx, &list)).To(Succeed())
		checked := 0
		for _, crd := range list.Items {
			want, ok := upstreamColumns[crd.Name]
			if !ok {
				continue
			}
			checked++
			var normal, wide []string
			for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
				if c.Priority == 0 {
					normal = append(normal, strings.ToUpper(c.Name))
				} else {
					wide = append(wide, strings.ToUpper(c.Name))
				}
			}
			got := strings.Join(normal, " ")
			if len(wide) > 0 {
				got += " | " + strings.Join(wide, " ")
			}
			Expect(got).To(Equal(want), crd.Name)
		}
		Expect(checked).To(Equal(len(upstreamColumns)))
	})
})
