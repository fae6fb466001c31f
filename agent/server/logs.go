package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/skiff-dev/skiff/agent/logs"
)

// LogOptions parses the query of a containerLogs request: the fields of
// core/v1 PodLogOptions, validated as upstream. now resolves sinceSeconds.
func LogOptions(q url.Values, now time.Time) (opts logs.Options, previous bool, err error) {
	var errs field.ErrorList
	boolean := func(name string) bool {
		v := q.Get(name)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, field.Invalid(field.NewPath(name), v, "must be true or false"))
		}
		return b
	}
	integer := func(name string) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return 0, false
		}
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, field.Invalid(field.NewPath(name), v, "must be an integer"))
			return 0, false
		}
		return i, true
	}
	opts.Tail = -1
	opts.Follow = boolean("follow")
	previous = boolean("previous")
	opts.Timestamps = boolean("timestamps")
	if n, ok := integer("tailLines"); ok {
		if n < 0 {
			errs = append(errs, field.Invalid(field.NewPath("tailLines"), n, "must be greater than or equal to 0"))
		}
		opts.Tail = n
	}
	if n, ok := integer("limitBytes"); ok {
		if n < 1 {
			errs = append(errs, field.Invalid(field.NewPath("limitBytes"), n, "must be greater than 0"))
		}
		opts.LimitBytes = n
	}
	secs, hasSecs := integer("sinceSeconds")
	if hasSecs {
		if secs < 1 {
			errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), secs, "must be greater than 0"))
		}
		opts.Since = now.Add(-time.Duration(secs) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, field.Invalid(field.NewPath("sinceTime"), v, "must be an RFC 3339 time"))
		}
		if hasSecs {
			errs = append(errs, field.Forbidden(field.NewPath("sinceTime"), "at most one of sinceTime or sinceSeconds may be specified"))
		}
		opts.Since = t
	}
	switch s := q.Get("stream"); s {
	case "", corev1.LogStreamAll:
	case corev1.LogStreamStdout, corev1.LogStreamStderr:
		if q.Get("tailLines") != "" {
			errs = append(errs, field.Forbidden(field.NewPath("stream"), "tailLines is incompatible with a stream other than All"))
		}
		opts.Stream = logs.Stdout
		if s == corev1.LogStreamStderr {
			opts.Stream = logs.Stderr
		}
	default:
		errs = append(errs, field.NotSupported(field.NewPath("stream"), s, []string{corev1.LogStreamAll, corev1.LogStreamStdout, corev1.LogStreamStderr}))
	}
	if len(errs) > 0 {
		return opts, false, errs.ToAggregate()
	}
	return opts, previous, nil
}

// containerLogs serves GET /containerLogs/{namespace}/{pod}/{container}.
func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	ns, name, container := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	if _, ok := s.auth.check(w, r, "get", SubresourceLog, ns, name); !ok {
		return
	}
	opts, previous, err := LogOptions(r.URL.Query(), s.opts.Now())
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
	if previous {
		c = t.runtime.Previous(container)
		if c == nil {
			writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", container, name)))
			return
		}
	} else if c == nil {
		writeStatus(w, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", container, name, waitingReason(t, container))))
		return
	}
	st, err := s.opts.Runtime.ContainerStatus(ctx, c.ID, false)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("reading the status of container %s: %w", c.ID, err)))
		return
	}
	path := st.GetStatus().GetLogPath()
	if _, err := os.Stat(path); path == "" || err != nil {
		writeStatus(w, apierrors.NewNotFound(podsResource, name+"/log"))
		return
	}
	running := func(ctx context.Context) bool {
		st, err := s.opts.Runtime.ContainerStatus(ctx, c.ID, false)
		if err != nil {
			return false
		}
		state := st.GetStatus().GetState()
		return state == runtimeapi.ContainerState_CONTAINER_RUNNING || state == runtimeapi.ContainerState_CONTAINER_CREATED
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	var out io.Writer = w
	if opts.Follow {
		out = flushWriter{w: w, rc: http.NewResponseController(w)}
	}
	if err := logs.Read(ctx, path, opts, out, running); err != nil && !errors.Is(err, context.Canceled) {
		ctrl.LoggerFrom(ctx).V(2).Info("Serving container logs ended early", "pod", ns+"/"+name, "container", container, "err", err.Error())
	}
}

// waitingReason is the pod status's waiting reason of the container.
func waitingReason(t *target, container string) string {
	for _, cs := range append(append([]corev1.ContainerStatus(nil), t.pod.Status.InitContainerStatuses...), t.pod.Status.ContainerStatuses...) {
		if cs.Name == container && cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
			return cs.State.Waiting.Reason
		}
	}
	return "ContainerCreating"
}

// flushWriter sends every write to the client at once.
type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}
