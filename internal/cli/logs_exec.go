package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/skiff-dev/skiff/api/apps/v1alpha1"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/agentclient"
)

// agentClient builds the agent API client with the user's own
// credentials, and the namespace to use.
func (k *kubeFlags) agentClient() (*agentclient.Client, string, error) {
	cc := k.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", err
	}
	c, err := agentclient.New(cfg)
	return c, ns, err
}

func newLogsCommand() *cobra.Command {
	k := &kubeFlags{}
	var container string
	var since time.Duration
	var tail, limitBytes int64
	opts := corev1.PodLogOptions{}
	cmd := &cobra.Command{
		Use:   "logs POD|TYPE/NAME [-c CONTAINER]",
		Short: "Print the logs of a container of a skiff pod, from the agent of its node",
		Example: `  skiff logs deployment/web
  skiff logs web-7d9f8-abcde
  kubectl skiff logs -f web-7d9f8-abcde -c web --tail 20`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, err := k.agentClient()
			if err != nil {
				return err
			}
			o := opts
			if since > 0 {
				o.SinceSeconds = ptr.To(int64(since.Seconds()))
			}
			if tail >= 0 {
				o.TailLines = ptr.To(tail)
			}
			if limitBytes > 0 {
				o.LimitBytes = ptr.To(limitBytes)
			}
			pod, err := k.podName(cmd.Context(), ns, args[0])
			if err != nil {
				return err
			}
			rc, err := c.Logs(cmd.Context(), ns, pod, container, &o)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(cmd.OutOrStdout(), rc)
			if errors.Is(err, cmd.Context().Err()) {
				return nil
			}
			return err
		},
	}
	k.add(cmd, true)
	f := cmd.Flags()
	f.StringVarP(&container, "container", "c", "", "container (default: the kubectl.kubernetes.io/default-container annotation, else the first)")
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming new lines")
	f.BoolVarP(&opts.Previous, "previous", "p", false, "the log of the previous, terminated, instance of the container")
	f.BoolVar(&opts.Timestamps, "timestamps", false, "prefix each line with its RFC3339 timestamp")
	f.DurationVar(&since, "since", 0, "only lines newer than this duration, such as 5m")
	f.Int64Var(&tail, "tail", -1, "only the last N lines (-1: all)")
	f.Int64Var(&limitBytes, "limit-bytes", 0, "at most this many bytes (0: no limit)")
	return cmd
}

func newExecCommand() *cobra.Command {
	k := &kubeFlags{}
	var container string
	var stdin, tty bool
	cmd := &cobra.Command{
		Use:   "exec POD|TYPE/NAME [-c CONTAINER] [-it] -- COMMAND [ARG...]",
		Short: "Run a command in a container of a skiff pod, through the agent of its node",
		Example: `  skiff exec deployment/web -- ls /
  skiff exec web-7d9f8-abcde -- ls /
  kubectl skiff exec -it web-7d9f8-abcde -- sh`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return fmt.Errorf("want POD -- COMMAND [ARG...]")
			}
			c, ns, err := k.agentClient()
			if err != nil {
				return err
			}
			opts := &corev1.PodExecOptions{Command: args[1:], Stdin: stdin, Stdout: true, Stderr: !tty, TTY: tty}
			streams := remotecommand.StreamOptions{Stdout: cmd.OutOrStdout(), Tty: tty}
			if !tty {
				streams.Stderr = cmd.ErrOrStderr()
			}
			if stdin {
				streams.Stdin = cmd.InOrStdin()
			}
			if tty {
				fd := int(os.Stdin.Fd())
				if !term.IsTerminal(fd) {
					return fmt.Errorf("-t needs a terminal on standard input")
				}
				state, err := term.MakeRaw(fd)
				if err != nil {
					return err
				}
				defer func() { _ = term.Restore(fd, state) }()
				streams.TerminalSizeQueue = &terminalSize{fd: fd, sent: false}
			}
			pod, err := k.podName(cmd.Context(), ns, args[0])
			if err != nil {
				return err
			}
			return c.Exec(cmd.Context(), ns, pod, container, opts, streams)
		},
	}
	k.add(cmd, true)
	f := cmd.Flags()
	f.StringVarP(&container, "container", "c", "", "container (default: the kubectl.kubernetes.io/default-container annotation, else the first)")
	f.BoolVarP(&stdin, "stdin", "i", false, "pass standard input to the command")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a terminal for the command")
	return cmd
}

// terminalSize reports the terminal's size once, then every 250ms change.
type terminalSize struct {
	fd   int
	sent bool
	last remotecommand.TerminalSize
}

func (t *terminalSize) Next() *remotecommand.TerminalSize {
	for {
		w, h, err := term.GetSize(t.fd)
		if err != nil {
			return nil
		}
		size := remotecommand.TerminalSize{Width: uint16(w), Height: uint16(h)}
		if !t.sent || size != t.last {
			t.sent, t.last = true, size
			return &size
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// podName resolves the POD argument of logs and exec: a pod name, pod/NAME,
// or a Deployment, StatefulSet or DaemonSet whose first running pod (the
// oldest) is used, as kubectl logs deployment/web does.
func (k *kubeFlags) podName(ctx context.Context, ns, arg string) (string, error) {
	kindArg, name, ok := strings.Cut(arg, "/")
	if !ok {
		return arg, nil
	}
	switch strings.ToLower(kindArg) {
	case "pod", "pods", "po", "spod", "pod.core.skiff.dev", "pods.core.skiff.dev":
		return name, nil
	}
	kind, err := parseWorkloadKind(kindArg)
	if err != nil {
		return "", err
	}
	c, defaultNS, err := k.client()
	if err != nil {
		return "", err
	}
	if ns == "" {
		ns = defaultNS
	}
	obj := kind.newObject()
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return "", err
	}
	var sel *metav1.LabelSelector
	switch o := obj.(type) {
	case *appsv1alpha1.Deployment:
		sel = o.Spec.Selector
	case *appsv1alpha1.StatefulSet:
		sel = o.Spec.Selector
	case *appsv1alpha1.DaemonSet:
		sel = o.Spec.Selector
	}
	selector, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return "", err
	}
	var pods corev1alpha1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return "", err
	}
	return pickPod(pods.Items, arg)
}

// pickPod prefers running pods, then the oldest.
func pickPod(pods []corev1alpha1.Pod, of string) (string, error) {
	if len(pods) == 0 {
		return "", fmt.Errorf("%s has no pods", of)
	}
	sort.SliceStable(pods, func(i, j int) bool {
		ri, rj := pods[i].Status.Phase == corev1.PodRunning, pods[j].Status.Phase == corev1.PodRunning
		if ri != rj {
			return ri
		}
		return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp)
	})
	return pods[0].Name, nil
}
