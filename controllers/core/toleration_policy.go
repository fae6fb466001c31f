package core

import (
	"context"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// TolerationPolicyName names the MutatingAdmissionPolicy (and its binding)
// that gives skiff Pods upstream's default not-ready and unreachable
// tolerations at admission.
const TolerationPolicyName = "skiff-default-toleration-seconds"

// tolerationExpression is the policy's JSON patch: append a NoExecute
// toleration for node.kubernetes.io/not-ready and /unreachable, with the
// configured tolerationSeconds (300 s by default), unless the pod already
// tolerates that taint (a toleration with the key or no key, and the
// effect NoExecute or none), as upstream's DefaultTolerationSeconds.
func tolerationExpression(d DefaultTolerations) string {
	return fmt.Sprintf(`
(has(object.spec.tolerations) || !(variables.needNotReady || variables.needUnreachable) ? [] :
  [JSONPatch{op: "add", path: "/spec/tolerations", value: []}]) +
(variables.needNotReady ? [JSONPatch{op: "add", path: "/spec/tolerations/-",
  value: Object.spec.tolerations{key: "node.kubernetes.io/not-ready", operator: "Exists", effect: "NoExecute", tolerationSeconds: %d}}] : []) +
(variables.needUnreachable ? [JSONPatch{op: "add", path: "/spec/tolerations/-",
  value: Object.spec.tolerations{key: "node.kubernetes.io/unreachable", operator: "Exists", effect: "NoExecute", tolerationSeconds: %d}}] : [])`,
		d.NotReady, d.Unreachable)
}

func needsToleration(key string) string {
	return fmt.Sprintf(`!(has(object.spec.tolerations) && object.spec.tolerations.exists(t,
  (!has(t.key) || t.key == "" || t.key == %q) && (!has(t.effect) || t.effect == "" || t.effect == "NoExecute")))`, key)
}

// TolerationPolicy returns the MutatingAdmissionPolicy and its binding,
// adding tolerations with the given seconds.
func TolerationPolicy(d DefaultTolerations) (*admissionregistrationv1.MutatingAdmissionPolicy, *admissionregistrationv1.MutatingAdmissionPolicyBinding) {
	ignore := admissionregistrationv1.Ignore
	policy := &admissionregistrationv1.MutatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: TolerationPolicyName},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			FailurePolicy: &ignore,
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{
							APIGroups:   []string{corev1alpha1.GroupVersion.Group},
							APIVersions: []string{corev1alpha1.GroupVersion.Version},
							Resources:   []string{"pods"},
						},
					},
				}},
			},
			Variables: []admissionregistrationv1.Variable{
				{Name: "needNotReady", Expression: needsToleration("node.kubernetes.io/not-ready")},
				{Name: "needUnreachable", Expression: needsToleration("node.kubernetes.io/unreachable")},
			},
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeJSONPatch,
				JSONPatch: &admissionregistrationv1.JSONPatch{Expression: tolerationExpression(d)},
			}},
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy,
		},
	}
	binding := &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: TolerationPolicyName},
		Spec:       admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: TolerationPolicyName},
	}
	return policy, binding
}

// TolerationPolicyInstaller installs the toleration policy when the API
// server serves admissionregistration.k8s.io/v1 MutatingAdmissionPolicies.
// Where it does not, the node lifecycle controller still treats a missing
// toleration as the default, so eviction behaves the same; only the pod spec does
// not show the toleration.
type TolerationPolicyInstaller struct {
	client      client.Client
	reader      client.Reader
	discovery   discovery.DiscoveryInterface
	tolerations DefaultTolerations
}

var (
	_ manager.Runnable               = (*TolerationPolicyInstaller)(nil)
	_ manager.LeaderElectionRunnable = (*TolerationPolicyInstaller)(nil)
)

// NewTolerationPolicyInstaller returns the installer; reader is uncached
// (the manager's API reader), so no informer is started for policies.
func NewTolerationPolicyInstaller(c client.Client, reader client.Reader, dc discovery.DiscoveryInterface) *TolerationPolicyInstaller {
	return &TolerationPolicyInstaller{client: c, reader: reader, discovery: dc, tolerations: UpstreamDefaultTolerations}
}

// WithDefaultTolerations sets the tolerationSeconds the policy adds
// (default 300 s each); give the node lifecycle controller the same.
func (i *TolerationPolicyInstaller) WithDefaultTolerations(d DefaultTolerations) *TolerationPolicyInstaller {
	i.tolerations = d
	return i
}

// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingadmissionpolicies;mutatingadmissionpolicybindings,verbs=get;create;update

// NeedLeaderElection makes only the leader install the policy.
func (i *TolerationPolicyInstaller) NeedLeaderElection() bool { return true }

// Start installs or updates the policy once.
func (i *TolerationPolicyInstaller) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("toleration-policy")
	served, err := i.Served()
	if err != nil {
		log.Error(err, "Cannot tell whether MutatingAdmissionPolicy is served; pods without tolerations get the default at eviction")
		return nil
	}
	if !served {
		log.Info("MutatingAdmissionPolicy is not served; pods without tolerations get the default at eviction")
		return nil
	}
	policy, binding := TolerationPolicy(i.tolerations)
	for _, obj := range []client.Object{policy, binding} {
		if err := i.ensure(ctx, obj); err != nil {
			// Not fatal: eviction applies the default anyway.
			log.Error(err, "Installing the default toleration policy failed", "name", obj.GetName())
		}
	}
	return nil
}

// Served tells whether the API server serves MutatingAdmissionPolicy v1.
func (i *TolerationPolicyInstaller) Served() (bool, error) {
	list, err := i.discovery.ServerResourcesForGroupVersion(admissionregistrationv1.SchemeGroupVersion.String())
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == "mutatingadmissionpolicies" {
			return true, nil
		}
	}
	return false, nil
}

func (i *TolerationPolicyInstaller) ensure(ctx context.Context, want client.Object) error {
	have := want.DeepCopyObject().(client.Object)
	err := i.reader.Get(ctx, client.ObjectKeyFromObject(want), have)
	if apierrors.IsNotFound(err) {
		return i.client.Create(ctx, want)
	}
	if err != nil {
		return err
	}
	switch h := have.(type) {
	case *admissionregistrationv1.MutatingAdmissionPolicy:
		w := want.(*admissionregistrationv1.MutatingAdmissionPolicy)
		if equality.Semantic.DeepEqual(h.Spec, w.Spec) {
			return nil
		}
		h.Spec = w.Spec
	case *admissionregistrationv1.MutatingAdmissionPolicyBinding:
		w := want.(*admissionregistrationv1.MutatingAdmissionPolicyBinding)
		if equality.Semantic.DeepEqual(h.Spec, w.Spec) {
			return nil
		}
		h.Spec = w.Spec
	}
	return i.client.Update(ctx, have)
}
