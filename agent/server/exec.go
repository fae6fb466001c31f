package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	utilproxy "k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/util/proxy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	ctrl "sigs.k8s.io/controller-runtime"
)

// ExecOptions parses the query of an exec request as the kubelet: the
// command (one or more command parameters) and which streams to attach.
// A stream is on with "1" or "true". With a TTY, stderr is merged into
// stdout, so stderr is turned off.
func ExecOptions(q url.Values) (*runtimeapi.ExecRequest, error) {
	on := func(name string) bool {
		b, _ := strconv.ParseBool(q.Get(name))
		return b
	}
	req := &runtimeapi.ExecRequest{
		Cmd:    q["command"],
		Stdin:  on("stdin"),
		Stdout: on("stdout"),
		Stderr: on("stderr"),
		Tty:    on("tty"),
	}
	if len(req.Cmd) == 0 {
		return nil, fmt.Errorf("command: Required value: at least one command parameter is needed")
	}
	if req.Tty {
		req.Stderr = false
	}
	if !req.Stdin && !req.Stdout && !req.Stderr {
		return nil, fmt.Errorf("you must specify at least 1 of stdin, stdout, stderr")
	}
	return req, nil
}

// exec serves /exec/{namespace}/{pod}/{container}: it asks the runtime for
// an exec session and proxies the client's upgraded connection to the
// runtime's streaming server.
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	if _, ok := s.auth.check(w, r, "create", SubresourceExec, ns, name); !ok {
		return
	}
	req, err := ExecOptions(r.URL.Query())
	if err != nil {
		writeStatus(w, apierrors.NewBadRequest(err.Error()))
		return
	}
	ctx := r.Context()
	t, err := s.findTarget(ctx, ns, name, container)
	if err != nil {
		writeStatus(w, err)
		return
	}
	c := t.runtime.Latest(container)
	if c == nil || !c.Running() {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("container %s is not running in pod %s", container, name)))
		return
	}
	req.ContainerId = c.ID
	ctrl.LoggerFrom(ctx).V(3).Info("Starting exec", "pod", ns+"/"+name, "container", container, "tty", req.Tty)
	resp, err := s.opts.Runtime.Exec(ctx, req)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("starting exec in container %s: %w", container, err)))
		return
	}
	loc, err := url.Parse(resp.GetUrl())
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("the runtime returned a bad streaming URL: %w", err)))
		return
	}
	// The credentials were for the agent, not for the runtime.
	r.Header.Del("Authorization")
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		// WebSocket v5 (client-go's default): the runtime speaks SPDY, so
		// translate, as the API server does in front of a kubelet.
		proxy.NewStreamTranslatorHandler(loc, nil, 0, proxy.Options{
			Stdin: req.Stdin, Stdout: req.Stdout, Stderr: req.Stderr, Tty: req.Tty,
		}).ServeHTTP(w, r)
		return
	}
	// SPDY, or older WebSocket protocols the runtime serves itself.
	utilproxy.NewUpgradeAwareHandler(loc, nil, false, true, responder{}).ServeHTTP(w, r)
}

// responder reports a failure to reach the runtime's streaming server.
type responder struct{}

func (responder) Error(w http.ResponseWriter, _ *http.Request, err error) {
	writeStatus(w, apierrors.NewInternalError(fmt.Errorf("proxying to the container runtime: %w", err)))
}
