package api_test

import (
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

const samplesDir = "../../../config/samples"

var _ = Describe("config/samples", func() {
	It("has a sample of every kind, each listed in its kustomization", func() {
		kinds := map[string]bool{}
		files, err := filepath.Glob(filepath.Join(samplesDir, "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		kustomization, err := os.ReadFile(filepath.Join(samplesDir, "kustomization.yaml"))
		Expect(err).NotTo(HaveOccurred())
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			Expect(string(kustomization)).To(ContainSubstring("- "+filepath.Base(f)+"\n"), "config/samples/kustomization.yaml must list %s", filepath.Base(f))
			raw, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			kinds[fromYAML(string(raw), "").GetKind()] = true
		}
		for _, kind := range []string{"Pod", "Node", "Service", "EndpointSlice", "PersistentVolume", "PersistentVolumeClaim",
			"ReplicaSet", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "StorageClass", "PodDisruptionBudget"} {
			Expect(kinds).To(HaveKey(kind))
		}
	})

	It("applies with client-side kubectl apply -k, twice", func() {
		out, err := kubectl(nil, "apply", "-k", samplesDir)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(out, "created")).To(Equal(15), out)
		// A second apply diffs against the last-applied annotation: nothing changes.
		out, err = kubectl(nil, "apply", "-k", samplesDir)
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(out, "unchanged")).To(Equal(15), out)

		out, err = kubectl(nil, "get", "skiff", "-A")
		Expect(err).NotTo(HaveOccurred())
		for _, name := range []string{"deployment.apps.skiff.dev/nginx-deployment", "cronjob.batch.skiff.dev/hello", "pod.core.skiff.dev/nginx"} {
			Expect(out).To(ContainSubstring(name))
		}
		out, err = kubectl(nil, "delete", "-k", samplesDir, "--wait=false")
		Expect(err).NotTo(HaveOccurred(), out)
	})

	It("applies the CRDs themselves with client-side kubectl apply", func() {
		out, err := kubectl(nil, "apply", "-f", "../../../config/crd/bases")
		Expect(err).NotTo(HaveOccurred())
		Expect(strings.Count(out, "customresourcedefinition.apiextensions.k8s.io/")).To(Equal(14), out)
		out, err = kubectl(nil, "explain", "deployments.spec.replicas", "--api-version=apps.skiff.dev/v1alpha1")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("replicas"))
		out, err = kubectl(nil, "explain", "pods.status.displayStatus", "--api-version=core.skiff.dev/v1alpha1")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("STATUS column"))
	})
})
