package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
)

// annotationRestartedAt is the template annotation `kubectl rollout
// restart` sets; changing the template rolls every pod.
const annotationRestartedAt = "kubectl.kubernetes.io/restartedAt"

// annotationChangeCause is the upstream annotation rollout history shows.
const annotationChangeCause = "kubernetes.io/change-cause"

// workloadKind is a kind that rolls out: Deployment, StatefulSet, DaemonSet.
type workloadKind string

const (
	kindDeployment  workloadKind = "Deployment"
	kindStatefulSet workloadKind = "StatefulSet"
	kindDaemonSet   workloadKind = "DaemonSet"
)

// parseWorkloadKind accepts the names kubectl users type, upstream or
// skiff's: deployment, deployments, deploy, sdeploy, deployment.apps.skiff.dev.
func parseWorkloadKind(s string) (workloadKind, error) {
	s = strings.ToLower(s)
	s = strings.TrimSuffix(strings.TrimSuffix(s, ".apps.skiff.dev"), ".apps")
	switch s {
	case "deployment", "deployments", "deploy", "sdeploy":
		return kindDeployment, nil
	case "statefulset", "statefulsets", "sts", "ssts":
		return kindStatefulSet, nil
	case "daemonset", "daemonsets", "ds", "sds":
		return kindDaemonSet, nil
	}
	return "", fmt.Errorf("%q has no rollout: use deployment, statefulset or daemonset (skiff's apps.skiff.dev kinds)", s)
}

func (k workloadKind) resource() string {
	return strings.ToLower(string(k)) + ".apps.skiff.dev"
}

func (k workloadKind) newObject() client.Object {
	switch k {
	case kindDeployment:
		return &appsv1alpha1.Deployment{}
	case kindStatefulSet:
		return &appsv1alpha1.StatefulSet{}
	default:
		return &appsv1alpha1.DaemonSet{}
	}
}

// template returns a pointer to the pod template of a workload object.
func template(obj client.Object) *corev1.PodTemplateSpec {
	switch o := obj.(type) {
	case *appsv1alpha1.Deployment:
		return &o.Spec.Template
	case *appsv1alpha1.StatefulSet:
		return &o.Spec.Template
	case *appsv1alpha1.DaemonSet:
		return &o.Spec.Template
	}
	return nil
}

// rolloutTarget is one workload named on the command line.
type rolloutTarget struct {
	kind workloadKind
	key  client.ObjectKey
}

func (t rolloutTarget) String() string { return t.kind.resource() + "/" + t.key.Name }

func newRolloutCommand() *cobra.Command {
	k := &kubeFlags{}
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND",
		Short: "Manage the rollout of skiff Deployments, StatefulSets and DaemonSets",
		Long: `rollout works as kubectl rollout does, on skiff's apps.skiff.dev kinds: it follows a
rollout (status), lists and shows revisions (history), goes back to one (undo),
rolls every pod (restart), and stops and continues a Deployment's rollout
(pause, resume).`,
	}
	k.add(cmd, true)
	cmd.AddCommand(
		newRolloutStatusCommand(k), newRolloutHistoryCommand(k), newRolloutUndoCommand(k),
		newRolloutRestartCommand(k), newRolloutPauseCommand(k, true), newRolloutPauseCommand(k, false),
	)
	return cmd
}

// resolve turns the arguments into a target and a client.
func resolve(k *kubeFlags, args []string) (client.Client, rolloutTarget, error) {
	kindArg, name, err := splitResourceArgs(args)
	if err != nil {
		return nil, rolloutTarget{}, err
	}
	kind, err := parseWorkloadKind(kindArg)
	if err != nil {
		return nil, rolloutTarget{}, err
	}
	c, ns, err := k.client()
	if err != nil {
		return nil, rolloutTarget{}, err
	}
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	return c, rolloutTarget{kind: kind, key: client.ObjectKey{Namespace: ns, Name: name}}, nil
}

func getTarget(ctx context.Context, c client.Client, t rolloutTarget) (client.Object, error) {
	obj := t.kind.newObject()
	if err := c.Get(ctx, t.key, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// rolloutStatus returns the status message of obj and whether it is done.
func rolloutStatus(obj client.Object) (string, bool, error) {
	switch o := obj.(type) {
	case *appsv1alpha1.Deployment:
		return deploymentRolloutStatus(o)
	case *appsv1alpha1.StatefulSet:
		return statefulSetRolloutStatus(o)
	case *appsv1alpha1.DaemonSet:
		return daemonSetRolloutStatus(o)
	}
	return "", true, fmt.Errorf("no rollout status for %T", obj)
}

func newRolloutStatusCommand(k *kubeFlags) *cobra.Command {
	var watch bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:     "status TYPE/NAME",
		Short:   "Show the status of a rollout, and wait until it is done",
		Example: "  skiff rollout status deployment/web\n  kubectl skiff rollout status statefulset web --timeout 2m",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, t, err := resolve(k, args)
			if err != nil {
				return err
			}
			return waitRollout(cmd.Context(), c, t, cmd.OutOrStdout(), watch, timeout, time.Second)
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", true, "wait until the rollout is done")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "how long to wait (0: forever)")
	return cmd
}

// waitRollout prints each new status message until the rollout is done.
func waitRollout(ctx context.Context, c client.Client, t rolloutTarget, out io.Writer, watch bool, timeout, poll time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := ""
	for {
		obj, err := getTarget(ctx, c, t)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("timed out waiting for the rollout of %s", t)
			}
			return err
		}
		msg, done, err := rolloutStatus(obj)
		if err != nil {
			return err
		}
		if msg != last {
			fmt.Fprintln(out, msg)
			last = msg
		}
		if done || !watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for the rollout of %s", t)
		case <-time.After(poll):
		}
	}
}

// revision is one entry of a workload's history.
type revision struct {
	number      int64
	changeCause string
	template    corev1.PodTemplateSpec
}

// history lists the revisions of obj, oldest first: the ReplicaSets a
// Deployment controls, the ControllerRevisions of a StatefulSet or DaemonSet.
func history(ctx context.Context, c client.Client, obj client.Object) ([]revision, error) {
	var out []revision
	switch obj.(type) {
	case *appsv1alpha1.Deployment:
		var list appsv1alpha1.ReplicaSetList
		if err := c.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil, err
		}
		for i := range list.Items {
			rs := &list.Items[i]
			if !controlledBy(rs, obj.GetUID()) {
				continue
			}
			n, err := strconv.ParseInt(rs.Annotations[appsv1alpha1.AnnotationRevision], 10, 64)
			if err != nil {
				continue
			}
			tmpl := *rs.Spec.Template.DeepCopy()
			delete(tmpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
			out = append(out, revision{number: n, changeCause: rs.Annotations[annotationChangeCause], template: tmpl})
		}
	default:
		var list appsv1.ControllerRevisionList
		if err := c.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return nil, err
		}
		for i := range list.Items {
			rev := &list.Items[i]
			if !controlledBy(rev, obj.GetUID()) {
				continue
			}
			tmpl, err := revisionTemplate(rev)
			if err != nil {
				return nil, err
			}
			out = append(out, revision{number: rev.Revision, changeCause: rev.Annotations[annotationChangeCause], template: *tmpl})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	return out, nil
}

func controlledBy(obj client.Object, uid types.UID) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == uid
}

// revisionTemplate decodes the pod template a ControllerRevision holds (a
// patch {"spec":{"template":{...}}}, as upstream writes it).
func revisionTemplate(rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	raw := rev.Data.Raw
	if raw == nil && rev.Data.Object != nil {
		var err error
		if raw, err = json.Marshal(rev.Data.Object); err != nil {
			return nil, err
		}
	}
	var p struct {
		Spec struct {
			Template map[string]any `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decoding ControllerRevision %s: %w", rev.Name, err)
	}
	delete(p.Spec.Template, "$patch")
	b, err := json.Marshal(p.Spec.Template)
	if err != nil {
		return nil, err
	}
	t := &corev1.PodTemplateSpec{}
	if err := json.Unmarshal(b, t); err != nil {
		return nil, fmt.Errorf("decoding ControllerRevision %s: %w", rev.Name, err)
	}
	return t, nil
}

func newRolloutHistoryCommand(k *kubeFlags) *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:     "history TYPE/NAME",
		Short:   "List the revisions of a rollout, or show one with --revision",
		Example: "  skiff rollout history deployment/web\n  skiff rollout history deployment/web --revision 2",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, t, err := resolve(k, args)
			if err != nil {
				return err
			}
			obj, err := getTarget(cmd.Context(), c, t)
			if err != nil {
				return err
			}
			revs, err := history(cmd.Context(), c, obj)
			if err != nil {
				return err
			}
			return printHistory(cmd.OutOrStdout(), t, revs, rev)
		},
	}
	cmd.Flags().Int64Var(&rev, "revision", 0, "show the pod template of this revision")
	return cmd
}

func printHistory(out io.Writer, t rolloutTarget, revs []revision, show int64) error {
	if show > 0 {
		for _, r := range revs {
			if r.number == show {
				b, err := yaml.Marshal(r.template)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "%s with revision #%d\nPod Template:\n%s", t, show, indent(string(b), "  "))
				return nil
			}
		}
		return fmt.Errorf("unable to find the specified revision %d of %s", show, t)
	}
	fmt.Fprintln(out, t)
	if len(revs) == 0 {
		fmt.Fprintln(out, "No rollout history found.")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "REVISION\tCHANGE-CAUSE")
	for _, r := range revs {
		cause := r.changeCause
		if cause == "" {
			cause = "<none>"
		}
		fmt.Fprintf(w, "%d\t%s\n", r.number, cause)
	}
	fmt.Fprintln(w)
	return w.Flush()
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

func newRolloutUndoCommand(k *kubeFlags) *cobra.Command {
	var to int64
	cmd := &cobra.Command{
		Use:   "undo TYPE/NAME",
		Short: "Roll back to the previous revision, or to --to-revision",
		Long: `undo restores the pod template of an earlier revision. For a Deployment it asks
skiff's Deployment controller through the annotation deploy.skiff.dev/rollback-to,
which the controller acts on and removes (as upstream's rollbackTo did); for a
StatefulSet or DaemonSet it writes the template of the ControllerRevision back
into the spec, as kubectl does.`,
		Example: "  skiff rollout undo deployment/web\n  skiff rollout undo daemonset/agent --to-revision 1",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, t, err := resolve(k, args)
			if err != nil {
				return err
			}
			msg, err := rolloutUndo(cmd.Context(), c, t, to)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().Int64Var(&to, "to-revision", 0, "revision to roll back to (0: the previous one)")
	return cmd
}

// rolloutUndo rolls t back to revision to (0: the previous one) and says
// what it did.
func rolloutUndo(ctx context.Context, c client.Client, t rolloutTarget, to int64) (string, error) {
	obj, err := getTarget(ctx, c, t)
	if err != nil {
		return "", err
	}
	if d, ok := obj.(*appsv1alpha1.Deployment); ok && d.Spec.Paused {
		return "", fmt.Errorf("you cannot rollback a paused deployment; resume it first with 'skiff rollout resume %s' and try again", t)
	}
	revs, err := history(ctx, c, obj)
	if err != nil {
		return "", err
	}
	target, err := pickRevision(revs, to)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t, err)
	}
	current := template(obj)
	if templatesEqual(&target.template, current) {
		return fmt.Sprintf("%s skipped rollback (current template already matches revision %d)", t, target.number), nil
	}
	if d, ok := obj.(*appsv1alpha1.Deployment); ok {
		patch := client.MergeFrom(d.DeepCopy())
		if d.Annotations == nil {
			d.Annotations = map[string]string{}
		}
		d.Annotations[appsv1alpha1.AnnotationRollbackTo] = strconv.FormatInt(target.number, 10)
		if err := c.Patch(ctx, d, patch); err != nil {
			return "", err
		}
		return fmt.Sprintf("%s rolled back", t), nil
	}
	*current = *target.template.DeepCopy()
	if err := c.Update(ctx, obj); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s rolled back", t), nil
}

// pickRevision finds revision to, or the previous one (the second highest)
// when to is 0.
func pickRevision(revs []revision, to int64) (*revision, error) {
	if to > 0 {
		for i := range revs {
			if revs[i].number == to {
				return &revs[i], nil
			}
		}
		return nil, fmt.Errorf("unable to find specified revision %d in history", to)
	}
	if to < 0 {
		return nil, fmt.Errorf("--to-revision must not be negative")
	}
	if len(revs) < 2 {
		return nil, fmt.Errorf("no rollout history found: there is no previous revision")
	}
	return &revs[len(revs)-2], nil
}

// templatesEqual compares pod templates, ignoring the labels controllers
// add to revisions (pod-template-hash, controller-revision-hash).
func templatesEqual(a, b *corev1.PodTemplateSpec) bool {
	strip := func(t *corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
		t = t.DeepCopy()
		delete(t.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		delete(t.Labels, appsv1.ControllerRevisionHashLabelKey)
		if len(t.Labels) == 0 {
			t.Labels = nil
		}
		if len(t.Annotations) == 0 {
			t.Annotations = nil
		}
		return t
	}
	return equality.Semantic.DeepEqual(strip(a), strip(b))
}

func newRolloutRestartCommand(k *kubeFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "restart TYPE/NAME",
		Short:   "Roll every pod of a workload, by stamping its template with the time",
		Example: "  skiff rollout restart deployment/web",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, t, err := resolve(k, args)
			if err != nil {
				return err
			}
			if err := rolloutRestart(cmd.Context(), c, t, time.Now()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s restarted\n", t)
			return nil
		},
	}
}

// rolloutRestart sets the kubectl.kubernetes.io/restartedAt annotation of
// the pod template, which makes the controller roll every pod.
func rolloutRestart(ctx context.Context, c client.Client, t rolloutTarget, now time.Time) error {
	obj, err := getTarget(ctx, c, t)
	if err != nil {
		return err
	}
	if d, ok := obj.(*appsv1alpha1.Deployment); ok && d.Spec.Paused {
		return fmt.Errorf("can't restart paused deployment (run 'skiff rollout resume %s' first)", t)
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(client.Object))
	tmpl := template(obj)
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[annotationRestartedAt] = now.Format(time.RFC3339)
	return c.Patch(ctx, obj, patch)
}

func newRolloutPauseCommand(k *kubeFlags, pause bool) *cobra.Command {
	use, short := "pause", "Pause a Deployment's rollout: template changes wait until resume"
	if !pause {
		use, short = "resume", "Resume a paused Deployment's rollout"
	}
	return &cobra.Command{
		Use:     use + " TYPE/NAME",
		Short:   short,
		Example: "  skiff rollout " + use + " deployment/web",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, t, err := resolve(k, args)
			if err != nil {
				return err
			}
			msg, err := rolloutPause(cmd.Context(), c, t, pause)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
}

// rolloutPause sets spec.paused of a Deployment; other kinds, as upstream,
// cannot be paused.
func rolloutPause(ctx context.Context, c client.Client, t rolloutTarget, pause bool) (string, error) {
	verb, doing := "paused", "pausing"
	if !pause {
		verb, doing = "resumed", "resuming"
	}
	if t.kind != kindDeployment {
		return "", fmt.Errorf("%s: %s is not supported (only Deployments pause)", t, doing)
	}
	d := &appsv1alpha1.Deployment{}
	if err := c.Get(ctx, t.key, d); err != nil {
		return "", err
	}
	if d.Spec.Paused == pause {
		if pause {
			return fmt.Sprintf("%s already paused", t), nil
		}
		return fmt.Sprintf("%s is not paused", t), nil
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Paused = pause
	if err := c.Patch(ctx, d, patch); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s", t, verb), nil
}
