package main

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

func str() apiextensionsv1.JSONSchemaProps { return apiextensionsv1.JSONSchemaProps{Type: "string"} }

func obj(props map[string]apiextensionsv1.JSONSchemaProps) apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "object", Properties: props}
}

func list(item apiextensionsv1.JSONSchemaProps) apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &item}}
}

func described(s apiextensionsv1.JSONSchemaProps, d string) apiextensionsv1.JSONSchemaProps {
	s.Description = d
	return s
}

// podSpec is the smallest schema crdpatch recognises as a PodSpec.
func podSpec() apiextensionsv1.JSONSchemaProps {
	container := func() apiextensionsv1.JSONSchemaProps {
		return obj(map[string]apiextensionsv1.JSONSchemaProps{
			"name": described(str(), "container name"), "image": str(), "imagePullPolicy": str(), "terminationMessagePolicy": str(),
			"resizePolicy": described(list(obj(map[string]apiextensionsv1.JSONSchemaProps{"resourceName": described(str(), "deep")})), "resize"),
		})
	}
	return obj(map[string]apiextensionsv1.JSONSchemaProps{
		"containers":          described(list(container()), "the containers"),
		"dnsPolicy":           str(),
		"restartPolicy":       str(),
		"ephemeralContainers": list(container()),
		"volumes": list(obj(map[string]apiextensionsv1.JSONSchemaProps{
			"name": str(), "emptyDir": obj(nil), "hostPath": obj(nil), "configMap": obj(nil), "secret": obj(nil), "nfs": obj(nil),
		})),
	})
}

func TestPatchSchemaRejectsUnsupportedFields(t *testing.T) {
	root := obj(map[string]apiextensionsv1.JSONSchemaProps{"spec": podSpec()})
	got := patchSchema("Pod", root)
	spec := got.Properties["spec"]

	var rules []string
	for _, r := range spec.XValidations {
		rules = append(rules, r.Rule)
	}
	if !contains(rules, "!has(self.ephemeralContainers)") {
		t.Errorf("pod spec rules %v lack the ephemeralContainers rejection", rules)
	}
	container := spec.Properties["containers"].Items.Schema
	if len(container.XValidations) != 1 || container.XValidations[0].Rule != "!has(self.resizePolicy)" {
		t.Errorf("container rules = %v, want the resizePolicy rejection", container.XValidations)
	}
	volume := spec.Properties["volumes"].Items.Schema
	if len(volume.XValidations) != 1 || volume.XValidations[0].Rule != "!has(self.nfs)" {
		t.Errorf("volume rules = %v, want only nfs rejected", volume.XValidations)
	}
	if spec.Properties["containers"].MinItems == nil || *spec.Properties["containers"].MinItems != 1 {
		t.Error("containers must require at least one item")
	}
}

func TestBoundListsAroundRules(t *testing.T) {
	root := obj(map[string]apiextensionsv1.JSONSchemaProps{"spec": podSpec()})
	got := patchSchema("Pod", root)
	spec := got.Properties["spec"]
	for name, want := range map[string]int64{"containers": 64, "volumes": 256, "ephemeralContainers": 64} {
		p := spec.Properties[name]
		if p.MaxItems == nil || *p.MaxItems != want {
			t.Errorf("%s maxItems = %v, want %d", name, p.MaxItems, want)
		}
	}
}

func TestTrimDescriptions(t *testing.T) {
	root := obj(map[string]apiextensionsv1.JSONSchemaProps{"spec": described(podSpec(), "skiff's spec")})
	got := patchSchema("Pod", root)
	spec := got.Properties["spec"]
	if spec.Description != "skiff's spec" {
		t.Errorf("the spec lost its description")
	}
	containers := spec.Properties["containers"]
	if containers.Description != "the containers" {
		t.Errorf("a pod spec field lost its description")
	}
	if d := containers.Items.Schema.Properties["name"].Description; d != "container name" {
		t.Errorf("a container field lost its description: %q", d)
	}
	if d := containers.Items.Schema.Properties["resizePolicy"].Items.Schema.Properties["resourceName"].Description; d != "" {
		t.Errorf("a deep field kept its description: %q", d)
	}
}

func TestDropDefaultsInLists(t *testing.T) {
	withDefault := func(s apiextensionsv1.JSONSchemaProps, v string) apiextensionsv1.JSONSchemaProps {
		s.Default = &apiextensionsv1.JSON{Raw: []byte(`"` + v + `"`)}
		return s
	}
	ports := list(obj(map[string]apiextensionsv1.JSONSchemaProps{"port": str(), "protocol": withDefault(str(), "TCP")}))
	ports.XListType = ptr("map")
	ports.XListMapKeys = []string{"port", "protocol"}
	root := obj(map[string]apiextensionsv1.JSONSchemaProps{"ports": ports, "top": withDefault(str(), "x")})
	dropDefaultsInLists(&root, false)

	got := root.Properties["ports"]
	if got.Items.Schema.Properties["protocol"].Default != nil {
		t.Error("the default of a list item field survived")
	}
	if diff := cmp.Diff("atomic", *got.XListType); diff != "" || got.XListMapKeys != nil {
		t.Errorf("a map list keyed by a defaulted field must become atomic, got %v %v", *got.XListType, got.XListMapKeys)
	}
	if root.Properties["top"].Default == nil {
		t.Error("a default outside lists was dropped")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
