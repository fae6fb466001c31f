// Package agentclient reaches the agent API (agent/server) of the node that
// runs a pod, with the caller's own credentials: it finds the node's
// address, port and serving certificate in the Node status, then reads
// container logs or runs exec sessions there. It is what `skiff logs` and
// `skiff exec` stand on; it must not hold command-line concerns (flags,
// printing).
package agentclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// DefaultContainerAnnotation names the container that logs and exec use
// when none is given, as kubectl.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// Client reaches agents on behalf of the user of a rest.Config.
type Client struct {
	cfg    *rest.Config
	reader client.Reader
}

// New returns a Client that reads Pods and Nodes with cfg and presents
// cfg's credentials (bearer token or client certificate) to the agents.
func New(cfg *rest.Config) (*Client, error) {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg, reader: c}, nil
}

// Endpoint is where a node's agent API is and how to reach it.
type Endpoint struct {
	// Node is the Node's name.
	Node string
	// Config reaches the agent: its Host is https://<address>:<port>, it
	// trusts the agent's certificate from the Node status, and it carries
	// the caller's credentials.
	Config *rest.Config
}

// Pod reads a pod.
func (c *Client) Pod(ctx context.Context, namespace, name string) (*corev1alpha1.Pod, error) {
	pod := &corev1alpha1.Pod{}
	if err := c.reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
		return nil, err
	}
	return pod, nil
}

// NodeEndpoint finds the agent API of a node in its status.
func (c *Client) NodeEndpoint(ctx context.Context, nodeName string) (*Endpoint, error) {
	n := &corev1alpha1.Node{}
	if err := c.reader.Get(ctx, client.ObjectKey{Name: nodeName}, n); err != nil {
		return nil, err
	}
	port := n.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port == 0 || n.Status.AgentCertificate == "" {
		return nil, fmt.Errorf("node %s publishes no agent API (status.daemonEndpoints.kubeletEndpoint.port, status.agentCertificate): its agent is simulated or not running", nodeName)
	}
	addr := nodeAddress(n)
	if addr == "" {
		return nil, fmt.Errorf("node %s has no address in its status", nodeName)
	}
	cfg := rest.CopyConfig(c.cfg)
	cfg.Host = "https://" + net.JoinHostPort(addr, strconv.Itoa(int(port)))
	cfg.APIPath = ""
	cfg.TLSClientConfig.CAFile = ""
	cfg.TLSClientConfig.CAData = []byte(n.Status.AgentCertificate)
	cfg.TLSClientConfig.ServerName = ""
	cfg.TLSClientConfig.Insecure = false
	// Agents serve their own pods without rate limits of the API server's.
	cfg.RateLimiter = nil
	cfg.QPS, cfg.Burst = -1, -1
	cfg.Timeout = 0
	return &Endpoint{Node: nodeName, Config: cfg}, nil
}

// PodEndpoint finds the agent of the node a pod is bound to.
func (c *Client) PodEndpoint(ctx context.Context, pod *corev1alpha1.Pod) (*Endpoint, error) {
	if pod.Spec.NodeName == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s is not scheduled to a node yet", pod.Name))
	}
	return c.NodeEndpoint(ctx, pod.Spec.NodeName)
}

// nodeAddress prefers the InternalIP, then the ExternalIP, then the host name.
func nodeAddress(n *corev1alpha1.Node) string {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeInternalDNS, corev1.NodeHostName} {
		for _, a := range n.Status.Addresses {
			if a.Type == t && a.Address != "" {
				return a.Address
			}
		}
	}
	return ""
}

// DefaultContainer is the container logs and exec use when the user names
// none: the one the default-container annotation names, else the first. It
// tells whether the pod has more than one to choose from.
func DefaultContainer(pod *corev1alpha1.Pod) (name string, ambiguous bool) {
	if n := pod.Annotations[DefaultContainerAnnotation]; n != "" {
		return n, false
	}
	if len(pod.Spec.Containers) == 0 {
		return "", false
	}
	return pod.Spec.Containers[0].Name, len(pod.Spec.Containers)+len(pod.Spec.InitContainers) > 1
}

// LogsURL is the path and query of a containerLogs request.
func LogsURL(namespace, pod, container string, opts *corev1.PodLogOptions) string {
	q := url.Values{}
	if opts != nil {
		if opts.Follow {
			q.Set("follow", "true")
		}
		if opts.Previous {
			q.Set("previous", "true")
		}
		if opts.Timestamps {
			q.Set("timestamps", "true")
		}
		if opts.TailLines != nil {
			q.Set("tailLines", strconv.FormatInt(*opts.TailLines, 10))
		}
		if opts.SinceSeconds != nil {
			q.Set("sinceSeconds", strconv.FormatInt(*opts.SinceSeconds, 10))
		}
		if opts.SinceTime != nil {
			q.Set("sinceTime", opts.SinceTime.UTC().Format(time.RFC3339))
		}
		if opts.LimitBytes != nil {
			q.Set("limitBytes", strconv.FormatInt(*opts.LimitBytes, 10))
		}
		if opts.Stream != nil {
			q.Set("stream", *opts.Stream)
		}
	}
	u := url.URL{Path: "/containerLogs/" + url.PathEscape(namespace) + "/" + url.PathEscape(pod) + "/" + url.PathEscape(container), RawQuery: q.Encode()}
	return u.String()
}

// Logs opens the log of a container of a pod; the caller reads and closes
// it. An empty container means DefaultContainer. Errors of the agent are
// API errors (apierrors.IsForbidden, IsUnauthorized, IsNotFound work).
func (c *Client) Logs(ctx context.Context, namespace, podName, container string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	pod, err := c.Pod(ctx, namespace, podName)
	if err != nil {
		return nil, err
	}
	if container == "" {
		container, _ = DefaultContainer(pod)
	}
	ep, err := c.PodEndpoint(ctx, pod)
	if err != nil {
		return nil, err
	}
	return ep.Logs(ctx, namespace, podName, container, opts)
}

// Logs opens a container's log at this agent.
func (ep *Endpoint) Logs(ctx context.Context, namespace, pod, container string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	hc, err := rest.HTTPClientFor(ep.Config)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep.Config.Host+LogsURL(namespace, pod, container, opts), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching the agent of node %s: %w", ep.Node, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp.Body, nil
}

// statusError turns an agent's error response into an API error.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64*1024))
	st := &metav1.Status{}
	if err := json.Unmarshal(body, st); err == nil && st.Kind == "Status" {
		return &apierrors.StatusError{ErrStatus: *st}
	}
	return apierrors.NewGenericServerResponse(resp.StatusCode, resp.Request.Method, corev1alpha1.GroupVersion.WithResource("pods").GroupResource(), "", string(body), 0, false)
}

// ExecURL is the URL of an exec request.
func ExecURL(host, namespace, pod, container string, opts *corev1.PodExecOptions) (*url.URL, error) {
	u, err := url.Parse(host)
	if err != nil {
		return nil, err
	}
	u.Path = "/exec/" + url.PathEscape(namespace) + "/" + url.PathEscape(pod) + "/" + url.PathEscape(container)
	q := url.Values{}
	for _, c := range opts.Command {
		q.Add("command", c)
	}
	for name, on := range map[string]bool{"stdin": opts.Stdin, "stdout": opts.Stdout, "stderr": opts.Stderr, "tty": opts.TTY} {
		if on {
			q.Set(name, "true")
		}
	}
	u.RawQuery = q.Encode()
	return u, nil
}

// Exec runs a command in a container of a pod and streams it. The streams
// must match opts (Stdin set when opts.Stdin, and so on); with opts.TTY,
// streams.TerminalSizeQueue carries resizes. A command that exits non-zero
// returns an error of type k8s.io/client-go/util/exec.CodeExitError with its
// exit code. An empty container means DefaultContainer.
func (c *Client) Exec(ctx context.Context, namespace, podName, container string, opts *corev1.PodExecOptions, streams remotecommand.StreamOptions) error {
	pod, err := c.Pod(ctx, namespace, podName)
	if err != nil {
		return err
	}
	if container == "" {
		container, _ = DefaultContainer(pod)
	}
	ep, err := c.PodEndpoint(ctx, pod)
	if err != nil {
		return err
	}
	ex, err := ep.Executor(namespace, podName, container, opts)
	if err != nil {
		return err
	}
	return ex.StreamWithContext(ctx, streams)
}

// Executor returns an executor for a command in a container at this agent:
// WebSocket first, then SPDY when the upgrade to WebSocket fails, as kubectl.
func (ep *Endpoint) Executor(namespace, pod, container string, opts *corev1.PodExecOptions) (remotecommand.Executor, error) {
	u, err := ExecURL(ep.Config.Host, namespace, pod, container, opts)
	if err != nil {
		return nil, err
	}
	ws, err := remotecommand.NewWebSocketExecutor(ep.Config, "GET", u.String())
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(ep.Config, "POST", u)
	if err != nil {
		return nil, err
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}
