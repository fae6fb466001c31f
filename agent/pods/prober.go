package pods

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiff-dev/skiff/agent/cri"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// RuntimeProber runs probes and hooks for real: exec through the runtime,
// HTTP, TCP and gRPC against the pod's address.
type RuntimeProber struct {
	Runtime cri.Runtime
}

var _ Prober = RuntimeProber{}

// Probe runs one attempt of the probe within ctx's deadline.
func (r RuntimeProber) Probe(ctx context.Context, pod *corev1alpha1.Pod, podIP string, c *corev1.Container, id string, p *corev1.Probe) (bool, string) {
	h := p.ProbeHandler
	switch {
	case h.Exec != nil:
		out, stderr, err := r.Runtime.ExecSync(ctx, id, h.Exec.Command, timeLeft(ctx))
		if err != nil {
			return false, strings.TrimSpace(fmt.Sprintf("%v %s%s", err, out, stderr))
		}
		return true, ""
	case h.HTTPGet != nil:
		return httpProbe(ctx, podIP, c, h.HTTPGet)
	case h.TCPSocket != nil:
		host := h.TCPSocket.Host
		if host == "" {
			host = podIP
		}
		port, err := resolvePort(h.TCPSocket.Port, c)
		if err != nil {
			return false, err.Error()
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		_ = conn.Close()
		return true, ""
	case h.GRPC != nil:
		conn, err := grpc.NewClient(net.JoinHostPort(podIP, strconv.Itoa(int(h.GRPC.Port))), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return false, err.Error()
		}
		defer conn.Close()
		service := ""
		if h.GRPC.Service != nil {
			service = *h.GRPC.Service
		}
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return false, err.Error()
		}
		if resp.Status != healthpb.HealthCheckResponse_SERVING {
			return false, "service unhealthy (responded with " + resp.Status.String() + ")"
		}
		return true, ""
	}
	return false, "probe has no handler"
}

// Hook runs a lifecycle handler.
func (r RuntimeProber) Hook(ctx context.Context, pod *corev1alpha1.Pod, podIP string, c *corev1.Container, id string, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		timeout := timeLeft(ctx)
		if timeout <= 0 || timeout > 30*time.Second {
			timeout = 30 * time.Second
		}
		out, stderr, err := r.Runtime.ExecSync(ctx, id, h.Exec.Command, timeout)
		if err != nil {
			return fmt.Sprintf("command %q exited with %v: %s%s", strings.Join(h.Exec.Command, " "), err, out, stderr), err
		}
		return "", nil
	case h.HTTPGet != nil:
		if _, hasDeadline := ctx.Deadline(); !hasDeadline {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
		}
		if ok, msg := httpProbe(ctx, podIP, c, h.HTTPGet); !ok {
			return msg, errors.New(msg)
		}
		return "", nil
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return "", nil
	}
	return "", nil
}

func timeLeft(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 0
}

func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found in container %s", p.StrVal, c.Name)
}

// httpProbe GETs the URL; 200-399 succeeds, as upstream.
func httpProbe(ctx context.Context, podIP string, c *corev1.Container, g *corev1.HTTPGetAction) (bool, string) {
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return false, err.Error()
	}
	host := g.Host
	if host == "" {
		host = podIP
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	full := u.String() + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, full, nil)
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("User-Agent", "skiff-probe/0.1")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // Probes do not verify, as upstream.
		DisableKeepAlives: true,
		Proxy:             nil,
	}}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 10*1024))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return true, ""
	}
	return false, fmt.Sprintf("HTTP probe failed with statuscode: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}
