package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/controllers/podcontrol"
)

// Revisions of StatefulSets and DaemonSets are apps/v1 ControllerRevisions,
// as upstream: their data is a strategic-merge patch that replaces the pod
// template, their labels are the template's plus controller-revision-hash.

// revisionPatch is the data of a ControllerRevision.
type revisionPatch struct {
	Spec struct {
		Template map[string]any `json:"template"`
	} `json:"spec"`
}

// revisionData serialises a template as upstream's getPatch does:
// {"spec":{"template":{...,"$patch":"replace"}}}.
func revisionData(t *corev1.PodTemplateSpec) (runtime.RawExtension, error) {
	raw, err := json.Marshal(t)
	if err != nil {
		return runtime.RawExtension{}, err
	}
	var p revisionPatch
	if err := json.Unmarshal(raw, &p.Spec.Template); err != nil {
		return runtime.RawExtension{}, err
	}
	p.Spec.Template["$patch"] = "replace"
	out, err := json.Marshal(p)
	return runtime.RawExtension{Raw: out}, err
}

// templateOfRevision returns the pod template a revision holds.
func templateOfRevision(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	raw := rev.Data.Raw
	if raw == nil && rev.Data.Object != nil {
		var err error
		if raw, err = json.Marshal(rev.Data.Object); err != nil {
			return nil, err
		}
	}
	var p struct {
		Spec struct {
			Template corev1.PodTemplateSpec `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decoding ControllerRevision %s: %w", klog.KObj(rev), err)
	}
	return &p.Spec.Template, nil
}

// hashRevisionData hashes revision data and the collision count, as
// upstream's HashControllerRevision.
func hashRevisionData(data []byte, collisionCount *int32) string {
	h := fnv.New32()
	_, _ = h.Write(data)
	if collisionCount != nil {
		_, _ = h.Write([]byte(fmt.Sprint(*collisionCount)))
	}
	return rand.SafeEncodeString(fmt.Sprint(h.Sum32()))
}

// revisionName is "<parent>-<hash>", the prefix cut so the name stays valid.
func revisionName(parent, hash string) string {
	if len(parent) > 223 {
		parent = parent[:223]
	}
	return parent + "-" + hash
}

// newRevision builds the ControllerRevision of template for owner.
func newRevision(owner client.Object, gvk schema.GroupVersionKind, template *corev1.PodTemplateSpec, hash string, number int64) (*appsv1.ControllerRevision, error) {
	data, err := revisionData(template)
	if err != nil {
		return nil, err
	}
	lbls := copyLabels(template.Labels)
	lbls[appsv1.ControllerRevisionHashLabelKey] = hash
	return &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{
			Name:            revisionName(owner.GetName(), hash),
			Namespace:       owner.GetNamespace(),
			Labels:          lbls,
			OwnerReferences: []metav1.OwnerReference{podcontrol.ControllerRef(owner, gvk)},
		},
		Data:     data,
		Revision: number,
	}, nil
}

// claimRevisions lists and claims the ControllerRevisions of owner, sorted
// by revision number.
func claimRevisions(ctx context.Context, c client.Client, apiReader client.Reader, owner client.Object, gvk schema.GroupVersionKind, selector labels.Selector) ([]*appsv1.ControllerRevision, error) {
	var list appsv1.ControllerRevisionList
	candidates, err := listOwned(ctx, c, &list, func() []*appsv1.ControllerRevision {
		out := make([]*appsv1.ControllerRevision, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out
	}, owner.GetNamespace(), selector, owner.GetUID())
	if err != nil {
		return nil, err
	}
	claimer := &podcontrol.Claimer{Client: c, Owner: owner, OwnerGVK: gvk, Selector: selector,
		CanAdopt: podcontrol.RecheckDeletion(apiReader, owner)}
	revs, err := podcontrol.Claim(ctx, claimer, candidates)
	sortRevisions(revs)
	return revs, err
}

func sortRevisions(revs []*appsv1.ControllerRevision) {
	sort.SliceStable(revs, func(i, j int) bool {
		if revs[i].Revision != revs[j].Revision {
			return revs[i].Revision < revs[j].Revision
		}
		return revs[i].Name < revs[j].Name
	})
}

// createRevision creates rev; when its name is taken by a revision with
// other data it bumps *collisionCount and returns an error so the caller
// retries with a new hash. A taken name with equal data returns the
// existing revision (the cache was behind).
func createRevision(ctx context.Context, c client.Client, apiReader client.Reader, rev *appsv1.ControllerRevision, collisionCount **int32) (*appsv1.ControllerRevision, error) {
	err := c.Create(ctx, rev)
	if err == nil {
		return rev, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("creating ControllerRevision %s: %w", klog.KObj(rev), err)
	}
	found := &appsv1.ControllerRevision{}
	if err := apiReader.Get(ctx, client.ObjectKeyFromObject(rev), found); err != nil {
		return nil, fmt.Errorf("reading ControllerRevision %s: %w", klog.KObj(rev), err)
	}
	if string(found.Data.Raw) == string(rev.Data.Raw) && metav1.GetControllerOf(found) != nil && metav1.GetControllerOf(found).UID == rev.OwnerReferences[0].UID {
		return found, nil
	}
	*collisionCount = int32Ptr(derefInt32(*collisionCount, 0) + 1)
	return nil, fmt.Errorf("hash collision on ControllerRevision %s; collisionCount is now %d", klog.KObj(rev), **collisionCount)
}
