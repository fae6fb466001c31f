// Package convert rewrites manifests between upstream Kubernetes apiVersions
// and skiff's. skiff's promise is that an upstream manifest becomes a skiff
// manifest by changing apiVersion only; this package is that change, in both
// directions, for multi-document YAML. It touches apiVersion and nothing
// else, so comments aside the result is the same manifest.
package convert

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Kinds maps each skiff kind's upstream apiVersion to skiff's.
var Kinds = map[schema.GroupVersionKind]schema.GroupVersionKind{
	{Version: "v1", Kind: "Pod"}:                                      {Group: "core.skiff.dev", Version: "v1alpha1", Kind: "Pod"},
	{Version: "v1", Kind: "Node"}:                                     {Group: "core.skiff.dev", Version: "v1alpha1", Kind: "Node"},
	{Version: "v1", Kind: "Service"}:                                  {Group: "core.skiff.dev", Version: "v1alpha1", Kind: "Service"},
	{Version: "v1", Kind: "PersistentVolume"}:                         {Group: "core.skiff.dev", Version: "v1alpha1", Kind: "PersistentVolume"},
	{Version: "v1", Kind: "PersistentVolumeClaim"}:                    {Group: "core.skiff.dev", Version: "v1alpha1", Kind: "PersistentVolumeClaim"},
	{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice"}: {Group: "core.skiff.dev", Version: "v1alpha1", Kind: "EndpointSlice"},
	{Group: "apps", Version: "v1", Kind: "ReplicaSet"}:                {Group: "apps.skiff.dev", Version: "v1alpha1", Kind: "ReplicaSet"},
	{Group: "apps", Version: "v1", Kind: "Deployment"}:                {Group: "apps.skiff.dev", Version: "v1alpha1", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Kind: "StatefulSet"}:               {Group: "apps.skiff.dev", Version: "v1alpha1", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Kind: "DaemonSet"}:                 {Group: "apps.skiff.dev", Version: "v1alpha1", Kind: "DaemonSet"},
	{Group: "batch", Version: "v1", Kind: "Job"}:                      {Group: "batch.skiff.dev", Version: "v1alpha1", Kind: "Job"},
	{Group: "batch", Version: "v1", Kind: "CronJob"}:                  {Group: "batch.skiff.dev", Version: "v1alpha1", Kind: "CronJob"},
	{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"}:    {Group: "storage.skiff.dev", Version: "v1alpha1", Kind: "StorageClass"},
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}:     {Group: "policy.skiff.dev", Version: "v1alpha1", Kind: "PodDisruptionBudget"},
}

// Direction says which way Manifests converts.
type Direction int

const (
	// ToSkiff rewrites upstream apiVersions to skiff's.
	ToSkiff Direction = iota
	// ToUpstream rewrites skiff apiVersions to upstream's.
	ToUpstream
)

// Manifests converts every document of a multi-document YAML stream and
// returns the documents, each as YAML. Documents of other kinds pass
// unchanged, and so do the items of a List.
func Manifests(in []byte, dir Direction) ([][]byte, error) {
	mapping := Kinds
	if dir == ToUpstream {
		mapping = make(map[schema.GroupVersionKind]schema.GroupVersionKind, len(Kinds))
		for up, sk := range Kinds {
			mapping[sk] = up
		}
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(in)))
	var out [][]byte
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if obj == nil {
			continue
		}
		convertObject(obj, mapping)
		converted, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		out = append(out, converted)
	}
}

func convertObject(obj map[string]any, mapping map[schema.GroupVersionKind]schema.GroupVersionKind) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return
	}
	if to, ok := mapping[gv.WithKind(kind)]; ok {
		obj["apiVersion"] = to.GroupVersion().String()
	}
	if items, ok := obj["items"].([]any); ok && kind == "List" {
		for _, item := range items {
			if m, ok := item.(map[string]any); ok {
				convertObject(m, mapping)
			}
		}
	}
}
