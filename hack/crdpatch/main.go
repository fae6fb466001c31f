// Command crdpatch finishes the CustomResourceDefinitions that controller-gen
// writes, in place. controller-gen turns markers on skiff's own types into
// schema; crdpatch adds what cannot be said with markers because it sits
// inside embedded upstream types (corev1.PodSpec, corev1.Container, ...), which
// appear at many places in many kinds:
//
//   - admission rules: enums, bounds, and the "not supported by skiff" rules
//     for upstream fields that skiff does not implement (see rules.go);
//   - description trimming inside the large upstream types, so that every CRD
//     stays small enough for client-side `kubectl apply` (the last-applied
//     annotation caps an object at 256 KiB) while skiff's own fields keep
//     their descriptions for `kubectl explain`.
//
// Usage: crdpatch DIR   (rewrites every *.yaml CRD in DIR)
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// maxCRDBytes is the largest compact JSON a CRD may have: the last-applied
// annotation that client-side apply writes holds the whole object, and all
// annotations together are capped at 256 KiB.
const maxCRDBytes = 256 * 1024

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: crdpatch DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "crdpatch:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		if err := patchFile(f); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

func patchFile(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(in, &crd); err != nil {
		return err
	}
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		root := *v.Schema.OpenAPIV3Schema
		root = patchSchema(crd.Spec.Names.Kind, root)
		v.Schema.OpenAPIV3Schema = &root
	}
	compact, err := json.Marshal(&crd)
	if err != nil {
		return err
	}
	if len(compact) > maxCRDBytes {
		return fmt.Errorf("CRD is %d bytes of JSON, more than client-side apply allows (%d): trim more descriptions", len(compact), maxCRDBytes)
	}
	out, err := yaml.Marshal(&crd)
	if err != nil {
		return err
	}
	// Keep the document marker and drop the status stanza that the API server owns,
	// as controller-gen writes them.
	out = bytes.Replace(out, []byte("status:\n  acceptedNames:\n    kind: \"\"\n    plural: \"\"\n  conditions: null\n  storedVersions: null\n"), nil, 1)
	return os.WriteFile(path, append([]byte("---\n"), out...), 0o644)
}

// patchSchema applies the admission rules to the object schema of one kind,
// then trims descriptions inside upstream types.
func patchSchema(kind string, root apiextensionsv1.JSONSchemaProps) apiextensionsv1.JSONSchemaProps {
	root = walk(root, nil, func(s *apiextensionsv1.JSONSchemaProps, path []string) {
		for _, r := range rules {
			if r.matches(s, path) {
				r.apply(s)
			}
		}
	})
	boundListsAroundRules(&root, "")
	dropDefaultsInLists(&root, false)
	return trimDescriptions(root, nil, -1)
}

// walk visits every schema node depth first, children before parents, with
// the property path that leads to it ("[]" stands for a list item).
func walk(s apiextensionsv1.JSONSchemaProps, path []string, visit func(*apiextensionsv1.JSONSchemaProps, []string)) apiextensionsv1.JSONSchemaProps {
	for name, child := range s.Properties {
		s.Properties[name] = walk(child, append(append([]string(nil), path...), name), visit)
	}
	if s.Items != nil && s.Items.Schema != nil {
		item := walk(*s.Items.Schema, append(append([]string(nil), path...), "[]"), visit)
		s.Items.Schema = &item
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		value := walk(*s.AdditionalProperties.Schema, append(append([]string(nil), path...), "{}"), visit)
		s.AdditionalProperties.Schema = &value
	}
	visit(&s, path)
	return s
}

// dropDefaultsInLists removes the defaults that upstream types declare for
// fields of list items (a container port's protocol, a key reference's name).
// Client-side apply sends CRD changes as JSON merge patches, which replace a
// list whole: a defaulted field in a list item makes every later apply of the
// same manifest report "configured" and look like drift to GitOps tools.
// Controllers read the empty value as its upstream default instead. A map
// list whose keys have defaults (a container's ports, keyed by port and
// protocol) becomes an atomic list, since the API server requires defaults
// on map keys.
func dropDefaultsInLists(s *apiextensionsv1.JSONSchemaProps, inList bool) {
	if inList {
		s.Default = nil
	}
	if s.XListType != nil && *s.XListType == "map" && s.Items != nil && s.Items.Schema != nil {
		for _, key := range s.XListMapKeys {
			if s.Items.Schema.Properties[key].Default != nil {
				s.XListType = ptr("atomic")
				s.XListMapKeys = nil
				break
			}
		}
	}
	for name, child := range s.Properties {
		dropDefaultsInLists(&child, inList)
		s.Properties[name] = child
	}
	if s.Items != nil && s.Items.Schema != nil {
		dropDefaultsInLists(s.Items.Schema, true)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		dropDefaultsInLists(s.AdditionalProperties.Schema, inList)
	}
}

// trimDescriptions drops descriptions inside upstream types that are large
// and repeated: a pod spec keeps the descriptions of its own fields and of its
// containers' fields, and loses those below; container statuses lose theirs.
// skiff's own fields and the upstream spec fields of each kind keep theirs,
// which is where `kubectl explain` users look.
func trimDescriptions(s apiextensionsv1.JSONSchemaProps, path []string, podSpecAt int) apiextensionsv1.JSONSchemaProps {
	if !keepDescription(path, podSpecAt) {
		s.Description = ""
	}
	if podSpecAt < 0 && isPodSpec(s) {
		podSpecAt = len(path)
	}
	for name, child := range s.Properties {
		s.Properties[name] = trimDescriptions(child, append(append([]string(nil), path...), name), podSpecAt)
	}
	if s.Items != nil && s.Items.Schema != nil {
		item := trimDescriptions(*s.Items.Schema, append(append([]string(nil), path...), "[]"), podSpecAt)
		s.Items.Schema = &item
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		value := trimDescriptions(*s.AdditionalProperties.Schema, append(append([]string(nil), path...), "{}"), podSpecAt)
		s.AdditionalProperties.Schema = &value
	}
	return s
}

func keepDescription(path []string, podSpecAt int) bool {
	for _, p := range path {
		if p == "containerStatuses" || p == "initContainerStatuses" {
			return len(path) > 0 && path[len(path)-1] == p
		}
	}
	if podSpecAt < 0 {
		return true
	}
	rel := path[podSpecAt:]
	switch {
	case len(rel) <= 1:
		return true
	case rel[0] == "containers" || rel[0] == "initContainers":
		return len(rel) <= 3
	}
	return false
}
