package podcontrol

import (
	"context"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/events"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Event reasons of pod control, as upstream.
const (
	ReasonSuccessfulCreate = "SuccessfulCreate"
	ReasonFailedCreate     = "FailedCreate"
	ReasonSuccessfulDelete = "SuccessfulDelete"
	ReasonFailedDelete     = "FailedDelete"
)

// IndexControllerUID is the field index of objects by the UID of their
// controller; register it with IndexByController.
const IndexControllerUID = "podcontrol.skiff.dev/controller-uid"

var (
	indexMu    sync.Mutex
	registered = map[string]bool{}
)

// IndexByController registers IndexControllerUID for obj's type on
// indexer, once per indexer and type however often it is called, so that
// several areas (apps, batch) may ask for it.
func IndexByController(ctx context.Context, indexer client.FieldIndexer, obj client.Object) error {
	return indexOnce(ctx, indexer, obj, IndexControllerUID, func(o client.Object) []string {
		if ref := metav1.GetControllerOf(o); ref != nil {
			return []string{string(ref.UID)}
		}
		return nil
	})
}

// IndexPodNodeName is the field index of skiff Pods by spec.nodeName;
// register it with IndexPodsByNode.
const IndexPodNodeName = "podcontrol.skiff.dev/pod-node-name"

// IndexPodsByNode registers IndexPodNodeName on indexer, once per indexer
// however often it is called, so that every controller listing a node's
// pods (node lifecycle, pod garbage collection, node access) shares one.
func IndexPodsByNode(ctx context.Context, indexer client.FieldIndexer) error {
	return indexOnce(ctx, indexer, &corev1alpha1.Pod{}, IndexPodNodeName, func(o client.Object) []string {
		if n := o.(*corev1alpha1.Pod).Spec.NodeName; n != "" {
			return []string{n}
		}
		return nil
	})
}

func indexOnce(ctx context.Context, indexer client.FieldIndexer, obj client.Object, field string, extract client.IndexerFunc) error {
	indexMu.Lock()
	defer indexMu.Unlock()
	key := fmt.Sprintf("%p/%T/%s", indexer, obj, field)
	if registered[key] {
		return nil
	}
	if err := indexer.IndexField(ctx, obj, field, extract); err != nil {
		return fmt.Errorf("indexing %T by %s: %w", obj, field, err)
	}
	registered[key] = true
	return nil
}

// Key is the expectations key of an owner.
func Key(obj metav1.Object) string {
	return obj.GetNamespace() + "/" + obj.GetName()
}

// NewPodFromTemplate returns the pod an owner creates from template: the
// template's labels, annotations, finalizers and spec, the owner's
// namespace, generateName "<owner>-" and the controller reference ref, as
// upstream's GetPodFromTemplate.
func NewPodFromTemplate(template *corev1.PodTemplateSpec, owner metav1.Object, ref metav1.OwnerReference) *corev1alpha1.Pod {
	prefix := owner.GetName() + "-"
	if len(validation.IsDNS1123Subdomain(prefix+"abcde")) != 0 {
		prefix = owner.GetName()
	}
	pod := &corev1alpha1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:       owner.GetNamespace(),
			GenerateName:    prefix,
			Labels:          copyMap(template.Labels),
			Annotations:     copyMap(template.Annotations),
			Finalizers:      append([]string(nil), template.Finalizers...),
			OwnerReferences: []metav1.OwnerReference{ref},
		},
		Spec: *template.Spec.DeepCopy(),
	}
	return pod
}

func copyMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// PodControl creates and deletes pods for an owner and records the events
// upstream records (SuccessfulCreate, FailedCreate, SuccessfulDelete,
// FailedDelete) on the owner.
type PodControl struct {
	Client   client.Client
	Recorder events.EventRecorder
}

// CreatePod creates pod on behalf of owner.
func (pc PodControl) CreatePod(ctx context.Context, pod *corev1alpha1.Pod, owner client.Object) error {
	if err := pc.Client.Create(ctx, pod); err != nil {
		// Namespace termination refuses creations; that is no failure of the owner.
		if !apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
			pc.Recorder.Eventf(owner, nil, corev1.EventTypeWarning, ReasonFailedCreate, "Create", "Error creating: %v", err)
		}
		return fmt.Errorf("creating pod for %s: %w", klog.KObj(owner), err)
	}
	ctrl.LoggerFrom(ctx).V(4).Info("Created pod", "pod", klog.KObj(pod))
	pc.Recorder.Eventf(owner, nil, corev1.EventTypeNormal, ReasonSuccessfulCreate, "Create", "Created pod: %s", pod.Name)
	return nil
}

// DeletePod deletes pod on behalf of owner; a pod already gone is no error.
func (pc PodControl) DeletePod(ctx context.Context, pod *corev1alpha1.Pod, owner client.Object) error {
	uid := pod.UID
	err := pc.Client.Delete(ctx, pod, client.Preconditions{UID: &uid})
	if apierrors.IsNotFound(err) {
		return err
	}
	if err != nil {
		pc.Recorder.Eventf(owner, nil, corev1.EventTypeWarning, ReasonFailedDelete, "Delete", "Error deleting: %v", err)
		return fmt.Errorf("deleting pod %s of %s: %w", klog.KObj(pod), klog.KObj(owner), err)
	}
	pc.Recorder.Eventf(owner, nil, corev1.EventTypeNormal, ReasonSuccessfulDelete, "Delete", "Deleted pod: %s", pod.Name)
	return nil
}

// UIDs returns the UIDs of pods.
func UIDs(pods []*corev1alpha1.Pod) []types.UID {
	out := make([]types.UID, len(pods))
	for i, p := range pods {
		out[i] = p.UID
	}
	return out
}

func joinErrs(errs []error) error { return errors.Join(errs...) }
