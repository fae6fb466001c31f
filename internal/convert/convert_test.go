package convert

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func TestManifests(t *testing.T) {
	tests := map[string]struct {
		in   string
		dir  Direction
		want []string // apiVersion of each document
	}{
		"deployment and service to skiff": {
			in:   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\n",
			dir:  ToSkiff,
			want: []string{"apps.skiff.dev/v1alpha1", "core.skiff.dev/v1alpha1"},
		},
		"kinds skiff does not own pass unchanged": {
			in:   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: b}\n",
			dir:  ToSkiff,
			want: []string{"v1", "networking.k8s.io/v1"},
		},
		"endpoint slice and storage class": {
			in:   "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\n",
			dir:  ToSkiff,
			want: []string{"core.skiff.dev/v1alpha1", "storage.skiff.dev/v1alpha1"},
		},
		"back to upstream": {
			in:   "apiVersion: batch.skiff.dev/v1alpha1\nkind: CronJob\n---\napiVersion: core.skiff.dev/v1alpha1\nkind: Pod\n",
			dir:  ToUpstream,
			want: []string{"batch/v1", "v1"},
		},
		"empty documents are dropped": {
			in:   "---\n# only a comment\n---\napiVersion: batch/v1\nkind: Job\n",
			dir:  ToSkiff,
			want: []string{"batch.skiff.dev/v1alpha1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			docs, err := Manifests([]byte(tc.in), tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range docs {
				var obj struct {
					APIVersion string `json:"apiVersion"`
				}
				if err := yaml.Unmarshal(d, &obj); err != nil {
					t.Fatal(err)
				}
				got = append(got, obj.APIVersion)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("apiVersions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestListItems(t *testing.T) {
	docs, err := Manifests([]byte("apiVersion: v1\nkind: List\nitems:\n- apiVersion: apps/v1\n  kind: DaemonSet\n"), ToSkiff)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(docs[0]), "apiVersion: apps.skiff.dev/v1alpha1") {
		t.Errorf("list item not converted:\n%s", docs[0])
	}
}

func TestRoundTripKeepsEverythingElse(t *testing.T) {
	in := "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  serviceName: web\n"
	there, err := Manifests([]byte(in), ToSkiff)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Manifests(there[0], ToUpstream)
	if err != nil {
		t.Fatal(err)
	}
	var want, got map[string]any
	_ = yaml.Unmarshal([]byte(in), &want)
	_ = yaml.Unmarshal(back[0], &got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("round trip changed the manifest (-want +got):\n%s", diff)
	}
}
