package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	"github.com/skiff-dev/skiff/api/conditions"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/eviction"
)

func newGetCommand() *cobra.Command {
	k := &kubeFlags{}
	var output, selector string
	cmd := &cobra.Command{
		Use:   "get nodes [NAME...]",
		Short: "List skiff Nodes with kubectl's columns (NAME STATUS ROLES AGE VERSION; -o wide for more)",
		Example: `  skiff get nodes
  kubectl skiff get nodes -o wide`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch strings.ToLower(args[0]) {
			case "nodes", "node", "no", "snode", "snodes", "nodes.core.skiff.dev", "node.core.skiff.dev":
			default:
				return fmt.Errorf("skiff get lists nodes only (%q): use kubectl get for other kinds", args[0])
			}
			if output != "" && output != "wide" {
				return fmt.Errorf("--output %q: only wide is supported; use kubectl get snodes -o %s", output, output)
			}
			c, _, err := k.client()
			if err != nil {
				return err
			}
			sel, err := labels.Parse(selector)
			if err != nil {
				return fmt.Errorf("--selector: %w", err)
			}
			nodes, err := listNodes(cmd.Context(), c, args[1:], sel)
			if err != nil {
				return err
			}
			return printNodes(cmd.OutOrStdout(), nodes, output == "wide", time.Now())
		},
	}
	k.add(cmd, false)
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide adds addresses, OS image, kernel and container runtime")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector")
	return cmd
}

func listNodes(ctx context.Context, c client.Client, names []string, sel labels.Selector) ([]corev1alpha1.Node, error) {
	if len(names) > 0 {
		var out []corev1alpha1.Node
		for _, n := range names {
			node := corev1alpha1.Node{}
			if err := c.Get(ctx, client.ObjectKey{Name: n}, &node); err != nil {
				return nil, err
			}
			out = append(out, node)
		}
		return out, nil
	}
	var list corev1alpha1.NodeList
	if err := c.List(ctx, &list, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// nodeStatus is kubectl's STATUS column: Ready, NotReady or Unknown, and
// SchedulingDisabled when cordoned.
func nodeStatus(n *corev1alpha1.Node) string {
	status := "Unknown"
	if c := meta.FindStatusCondition(n.Status.Conditions, conditions.Ready); c != nil {
		switch c.Status {
		case metav1.ConditionTrue:
			status = "Ready"
		case metav1.ConditionFalse:
			status = "NotReady"
		}
	}
	if n.Spec.Unschedulable {
		status += ",SchedulingDisabled"
	}
	return status
}

// nodeRoles is kubectl's ROLES column, from node-role.kubernetes.io/<role>
// and kubernetes.io/role labels.
func nodeRoles(n *corev1alpha1.Node) string {
	roles := map[string]bool{}
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, "node-role.kubernetes.io/"):
			if role := strings.TrimPrefix(k, "node-role.kubernetes.io/"); role != "" {
				roles[role] = true
			}
		case k == "kubernetes.io/role" && v != "":
			roles[v] = true
		}
	}
	if len(roles) == 0 {
		return "<none>"
	}
	out := make([]string, 0, len(roles))
	for r := range roles {
		out = append(out, r)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func nodeAddress(n *corev1alpha1.Node, t corev1.NodeAddressType) string {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return "<none>"
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

func printNodes(out io.Writer, nodes []corev1alpha1.Node, wide bool, now time.Time) error {
	if len(nodes) == 0 {
		fmt.Fprintln(out, "No resources found")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	header := "NAME\tSTATUS\tROLES\tAGE\tVERSION"
	if wide {
		header += "\tINTERNAL-IP\tEXTERNAL-IP\tOS-IMAGE\tKERNEL-VERSION\tCONTAINER-RUNTIME"
	}
	fmt.Fprintln(w, header)
	for i := range nodes {
		n := &nodes[i]
		age := duration.HumanDuration(now.Sub(n.CreationTimestamp.Time))
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s", n.Name, nodeStatus(n), nodeRoles(n), age, orNone(n.Status.NodeInfo.KubeletVersion))
		if wide {
			info := n.Status.NodeInfo
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s\t%s", nodeAddress(n, corev1.NodeInternalIP), nodeAddress(n, corev1.NodeExternalIP),
				orNone(info.OSImage), orNone(info.KernelVersion), orNone(info.ContainerRuntimeVersion))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func newCordonCommand(cordon bool) *cobra.Command {
	k := &kubeFlags{}
	use, short := "cordon NODE", "Mark a skiff Node unschedulable"
	if !cordon {
		use, short = "uncordon NODE", "Mark a skiff Node schedulable again"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := k.client()
			if err != nil {
				return err
			}
			msg, err := setUnschedulable(cmd.Context(), c, args[0], cordon)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	k.add(cmd, false)
	return cmd
}

// setUnschedulable sets spec.unschedulable of a Node and says what changed.
func setUnschedulable(ctx context.Context, c client.Client, name string, value bool) (string, error) {
	verb := "cordoned"
	if !value {
		verb = "uncordoned"
	}
	n := &corev1alpha1.Node{}
	if err := c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		return "", err
	}
	if n.Spec.Unschedulable == value {
		return fmt.Sprintf("node/%s already %s", name, verb), nil
	}
	patch := client.MergeFrom(n.DeepCopy())
	n.Spec.Unschedulable = value
	if err := c.Patch(ctx, n, patch); err != nil {
		return "", err
	}
	return fmt.Sprintf("node/%s %s", name, verb), nil
}

// drainOptions are kubectl drain's flags that apply to skiff pods.
type drainOptions struct {
	ignoreDaemonSets   bool
	deleteEmptyDirData bool
	force              bool
	gracePeriod        int
	timeout            time.Duration
	podSelector        string
	disableEviction    bool
	// poll is how often drain looks whether an evicted pod is gone; retry
	// how long it waits after a disruption budget refused an eviction.
	poll, retry time.Duration
}

func newDrainCommand() *cobra.Command {
	k := &kubeFlags{}
	o := drainOptions{poll: time.Second, retry: 5 * time.Second}
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Cordon a skiff Node and evict its pods",
		Long: `drain marks the Node unschedulable and evicts its skiff pods, as kubectl drain does:
DaemonSet pods stay (with --ignore-daemonsets; without it drain refuses), pods
no controller would recreate need --force, pods with emptyDir data need
--delete-emptydir-data, and finished pods go without asking.

Evictions honour the PodDisruptionBudgets (policy.skiff.dev) that select the
pods, as the eviction API does for core Pods: while a budget allows no
disruption drain says so and tries that pod again every 5 seconds, until
--timeout. --disable-eviction deletes the pods instead, bypassing budgets.
drain waits until every evicted pod is gone.`,
		Example: "  skiff drain node-1 --ignore-daemonsets\n  kubectl skiff drain node-1 --ignore-daemonsets --delete-emptydir-data --timeout 2m",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := k.client()
			if err != nil {
				return err
			}
			return drain(cmd.Context(), c, cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0], o)
		},
	}
	k.add(cmd, false)
	f := cmd.Flags()
	f.BoolVar(&o.ignoreDaemonSets, "ignore-daemonsets", false, "leave DaemonSet-managed pods (their DaemonSet would recreate them at once)")
	f.BoolVar(&o.deleteEmptyDirData, "delete-emptydir-data", false, "evict pods with emptyDir volumes too; their data is lost")
	f.BoolVar(&o.force, "force", false, "evict pods no ReplicaSet, StatefulSet, DaemonSet or Job controls, which nothing recreates")
	f.IntVar(&o.gracePeriod, "grace-period", -1, "seconds each pod has to stop (-1: the pod's own terminationGracePeriodSeconds)")
	f.DurationVar(&o.timeout, "timeout", 0, "how long to wait for the pods to go (0: forever)")
	f.StringVar(&o.podSelector, "pod-selector", "", "evict only the pods matching this label selector")
	f.BoolVar(&o.disableEviction, "disable-eviction", false, "delete pods instead of evicting them, bypassing PodDisruptionBudgets")
	return cmd
}

// drainPlan sorts the pods of a node into those to evict and those to
// keep, with the warnings and refusals kubectl drain prints.
type drainPlan struct {
	evict    []corev1alpha1.Pod
	warnings []string
	errors   []string
}

// planDrain applies kubectl drain's filters (daemonSet, unreplicated,
// localStorage) to pods; daemonSetExists tells whether a DaemonSet still
// exists, so orphans of a deleted one count as unreplicated.
func planDrain(pods []corev1alpha1.Pod, o drainOptions, daemonSetExists func(ns, name string) bool) drainPlan {
	var p drainPlan
	var dsIgnored, dsRefused, unreplicatedForced, unreplicatedRefused, localRefused, localForced []string
	for _, pod := range pods {
		name := pod.Namespace + "/" + pod.Name
		if pod.DeletionTimestamp != nil {
			// Going already: wait for it like the rest.
			p.evict = append(p.evict, pod)
			continue
		}
		finished := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
		ref := metav1.GetControllerOf(&pod)
		if ref != nil && ref.Kind == "DaemonSet" && !finished {
			if daemonSetExists(pod.Namespace, ref.Name) || !o.force {
				if o.ignoreDaemonSets {
					dsIgnored = append(dsIgnored, name)
				} else {
					dsRefused = append(dsRefused, name)
				}
				continue
			}
		}
		if !finished && ref == nil {
			if !o.force {
				unreplicatedRefused = append(unreplicatedRefused, name)
				continue
			}
			unreplicatedForced = append(unreplicatedForced, name)
		}
		if !finished && hasEmptyDir(&pod) {
			if !o.deleteEmptyDirData {
				localRefused = append(localRefused, name)
				continue
			}
			localForced = append(localForced, name)
		}
		p.evict = append(p.evict, pod)
	}
	if len(dsRefused) > 0 {
		p.errors = append(p.errors, "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): "+strings.Join(dsRefused, ", "))
	}
	if len(unreplicatedRefused) > 0 {
		p.errors = append(p.errors, "cannot delete Pods that declare no controller (use --force to override): "+strings.Join(unreplicatedRefused, ", "))
	}
	if len(localRefused) > 0 {
		p.errors = append(p.errors, "cannot delete Pods with local storage (use --delete-emptydir-data to override): "+strings.Join(localRefused, ", "))
	}
	if len(dsIgnored) > 0 {
		p.warnings = append(p.warnings, "ignoring DaemonSet-managed Pods: "+strings.Join(dsIgnored, ", "))
	}
	if len(unreplicatedForced) > 0 {
		p.warnings = append(p.warnings, "deleting Pods that declare no controller: "+strings.Join(unreplicatedForced, ", "))
	}
	if len(localForced) > 0 {
		p.warnings = append(p.warnings, "deleting Pods with local storage: "+strings.Join(localForced, ", "))
	}
	return p
}

func hasEmptyDir(p *corev1alpha1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir != nil {
			return true
		}
	}
	return false
}

func drain(ctx context.Context, c client.Client, out, errOut io.Writer, node string, o drainOptions) error {
	msg, err := setUnschedulable(ctx, c, node, true)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, msg)
	sel, err := labels.Parse(o.podSelector)
	if err != nil {
		return fmt.Errorf("--pod-selector: %w", err)
	}
	var pods corev1alpha1.PodList
	if err := c.List(ctx, &pods, client.MatchingFields{"spec.nodeName": node}, client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", node, err)
	}
	plan := planDrain(pods.Items, o, func(ns, name string) bool {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &appsv1alpha1.DaemonSet{})
		return !apierrors.IsNotFound(err)
	})
	if len(plan.errors) > 0 {
		return fmt.Errorf("unable to drain node %q: %s\nThere are pending nodes to be drained:\n %s", node, strings.Join(plan.errors, "; "), node)
	}
	for _, w := range plan.warnings {
		fmt.Fprintln(out, "Warning:", w)
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	var (
		wg   sync.WaitGroup
		errs []error
	)
	p := &linePrinter{out: out, errOut: errOut}
	// Each pod is evicted, then waited for, on its own, as kubectl does:
	// one pod held by its budget does not hold up the others.
	for i := range plan.evict {
		pod := &plan.evict[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := evictPod(ctx, c, pod, o, p)
			if err == nil {
				err = waitPodGone(ctx, c, pod, o.poll)
			}
			if err != nil {
				p.mu.Lock()
				errs = append(errs, err)
				p.mu.Unlock()
				return
			}
			p.printf("pod/%s evicted\n", pod.Name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("draining node %s: %w", node, err)
	}
	fmt.Fprintf(out, "node/%s drained\n", node)
	return nil
}

// linePrinter prints whole lines from several goroutines; errors go to
// errOut, as kubectl prints eviction retries to standard error.
type linePrinter struct {
	mu          sync.Mutex
	out, errOut io.Writer
}

func (p *linePrinter) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, format, args...)
}

func (p *linePrinter) errorf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.errOut, format, args...)
}

// evictPod evicts one pod through its disruption budget, trying again
// every retry while the budget refuses (429), until ctx ends; with
// --disable-eviction it deletes the pod instead, as kubectl.
func evictPod(ctx context.Context, c client.Client, pod *corev1alpha1.Pod, o drainOptions, p *linePrinter) error {
	var grace *int64
	if o.gracePeriod >= 0 {
		grace = ptr.To(int64(o.gracePeriod))
	}
	if o.disableEviction {
		p.printf("deleting pod %s/%s\n", pod.Namespace, pod.Name)
		opts := []client.DeleteOption{client.Preconditions{UID: &pod.UID}}
		if grace != nil {
			opts = append(opts, client.GracePeriodSeconds(*grace))
		}
		if err := c.Delete(ctx, pod, opts...); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("deleting pod %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		return nil
	}
	p.printf("evicting pod %s/%s\n", pod.Namespace, pod.Name)
	for {
		err := eviction.Evict(ctx, c, pod.Namespace, pod.Name, eviction.Options{GracePeriodSeconds: grace})
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case apierrors.IsTooManyRequests(err):
			p.errorf("error when evicting pods/%q -n %q (will retry after %s): %v\n", pod.Name, pod.Namespace, o.retry, err)
		case ctx.Err() != nil:
			return fmt.Errorf("evicting pod %s/%s: %w", pod.Namespace, pod.Name, ctx.Err())
		default:
			return fmt.Errorf("error when evicting pods/%q -n %q: %w", pod.Name, pod.Namespace, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s/%s: global timeout reached before its disruption budget allowed the eviction%s", pod.Namespace, pod.Name, causes(err))
		case <-time.After(o.retry):
		}
	}
}

// causes returns the causes an API error gives (": c1; c2"), such as the
// disruption budget that refused an eviction and its counts.
func causes(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return ""
	}
	var out []string
	for _, c := range status.Status().Details.Causes {
		out = append(out, c.Message)
	}
	if len(out) == 0 {
		return ""
	}
	return ": " + strings.Join(out, "; ")
}

// waitPodGone waits until the pod (this UID) no longer exists.
func waitPodGone(ctx context.Context, c client.Client, pod *corev1alpha1.Pod, poll time.Duration) error {
	for {
		cur := &corev1alpha1.Pod{}
		err := c.Get(ctx, client.ObjectKeyFromObject(pod), cur)
		if apierrors.IsNotFound(err) || (err == nil && cur.UID != pod.UID) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pod %s/%s was not gone in time", pod.Namespace, pod.Name)
		case <-time.After(poll):
		}
	}
}
