package main

import (
	"fmt"
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

	rule := func(s apiextensionsv1.JSONSchemaProps) string {
		if len(s.XValidations) != 1 {
			return fmt.Sprint(s.XValidations)
		}
		return s.XValidations[0].Rule + ": " + s.XValidations[0].Message
	}
	// Rejections sit on the rejected property, so that they cost nothing
	// where it is absent.
	if got, want := rule(spec.Properties["ephemeralContainers"]), "false: ephemeralContainers is not supported by skiff"; got != want {
		t.Errorf("ephemeralContainers rules = %s, want %s", got, want)
	}
	container := spec.Properties["containers"].Items.Schema
	if len(container.XValidations) != 0 {
		t.Errorf("container rules = %v, want none on the container itself", container.XValidations)
	}
	if got, want := rule(container.Properties["resizePolicy"]), "false: resizePolicy is not supported by skiff"; got != want {
		t.Errorf("resizePolicy rules = %s, want %s", got, want)
	}
	volume := spec.Properties["volumes"].Items.Schema
	for name, p := range volume.Properties {
		want := ""
		if name == "nfs" {
			want = "false: this volume type is not supported by skiff: use emptyDir, hostPath, configMap, secret, projected, downwardAPI, persistentVolumeClaim"
		}
		if got := rule(p); (want == "" && len(p.XValidations) != 0) || (want != "" && got != want) {
			t.Errorf("volume property %s rules = %s, want %q", name, got, want)
		}
	}
	if len(volume.XValidations) != 0 {
		t.Errorf("volume rules = %v, want none on the volume itself", volume.XValidations)
	}
	if spec.Properties["containers"].MinItems == nil || *spec.Properties["containers"].MinItems != 1 {
		t.Error("containers must require at least one item")
	}
}

func TestPodObjectSpecTransitions(t *testing.T) {
	ps := podSpec()
	ps.Properties["nodeName"] = str()
	ps.Properties["initContainers"] = ps.Properties["containers"]
	root := obj(map[string]apiextensionsv1.JSONSchemaProps{"spec": ps, "template": obj(map[string]apiextensionsv1.JSONSchemaProps{"spec": podSpec()})})
	got := patchSchema("Pod", root)
	spec := got.Properties["spec"]
	for name, want := range map[string]string{"nodeName": "oldSelf == '' || self == oldSelf", "containers": "size(self) == size(oldSelf)", "restartPolicy": "self == oldSelf"} {
		p := spec.Properties[name]
		if len(p.XValidations) != 1 || p.XValidations[0].Rule != want {
			t.Errorf("%s rules = %v, want %q", name, p.XValidations, want)
		}
	}
	if len(spec.XValidations) != 2 {
		t.Errorf("spec rules = %v, want the nodeName removal and init container count checks", spec.XValidations)
	}
	// A template's spec may change: a new template is a new revision.
	tmpl := got.Properties["template"].Properties["spec"]
	if len(tmpl.XValidations) != 0 || len(tmpl.Properties["restartPolicy"].XValidations) != 0 {
		t.Errorf("template spec has transition rules: %v", tmpl.XValidations)
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
