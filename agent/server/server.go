package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/agent/cri"
	"github.com/skiff-dev/skiff/agent/pods"
	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// DefaultPort is the kubelet's port.
const DefaultPort = 10250

// Config holds the settings of the agent API that flags set.
type Config struct {
	// Address is the IP address to listen on; empty means every address.
	Address string
	// Port to listen on; 0 picks a free one.
	Port int
	// CertDir keeps the self-signed serving certificate.
	CertDir string
	// TLSCertFile and TLSKeyFile, when set, are the serving certificate
	// and key to use instead of a self-signed one.
	TLSCertFile, TLSKeyFile string
	// ClientCAFile, when set, authenticates clients by certificates it signed.
	ClientCAFile string
	// AuthenticationCacheTTL keeps TokenReview results; AuthorizationAllowTTL
	// and AuthorizationDenyTTL keep SubjectAccessReview results. Zero
	// means the package defaults.
	AuthenticationCacheTTL, AuthorizationAllowTTL, AuthorizationDenyTTL time.Duration
}

// Runtime is the part of CRI the agent API uses.
type Runtime interface {
	cri.Runtime
	cri.Streaming
}

// Options configure a Server.
type Options struct {
	Config
	// NodeName is the node whose pods are served.
	NodeName string
	// Hosts are the node's addresses and names, put in a self-signed certificate.
	Hosts []string
	// Pods reads the node's pods (the agent's cache).
	Pods client.Reader
	// Runtime runs the containers.
	Runtime Runtime
	// Client sends TokenReviews and SubjectAccessReviews.
	Client kubernetes.Interface
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the agent API of one node.
type Server struct {
	opts     Options
	auth     *auth
	listener net.Listener
	cert     tls.Certificate
	certPEM  []byte
	handler  http.Handler
}

// New loads or creates the serving certificate and opens the listener, so
// that Port and Certificate are known before the Node is registered; Start
// serves.
func New(opts Options) (*Server, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.AuthenticationCacheTTL == 0 {
		opts.AuthenticationCacheTTL = DefaultAuthenticationCacheTTL
	}
	if opts.AuthorizationAllowTTL == 0 {
		opts.AuthorizationAllowTTL = DefaultAuthorizationAllowTTL
	}
	if opts.AuthorizationDenyTTL == 0 {
		opts.AuthorizationDenyTTL = DefaultAuthorizationDenyTTL
	}
	a, err := newAuth(opts.Client, opts.Config)
	if err != nil {
		return nil, err
	}
	cert, certPEM, err := servingCert(opts.TLSCertFile, opts.TLSKeyFile, opts.CertDir, opts.NodeName, opts.Hosts, opts.Now())
	if err != nil {
		return nil, fmt.Errorf("preparing the agent API's serving certificate: %w", err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(opts.Address, strconv.Itoa(opts.Port)))
	if err != nil {
		return nil, fmt.Errorf("listening for the agent API: %w", err)
	}
	s := &Server{opts: opts, auth: a, listener: l, cert: cert, certPEM: certPEM}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.containerLogs)
	mux.HandleFunc("GET /exec/{namespace}/{pod}/{container}", s.exec)
	mux.HandleFunc("POST /exec/{namespace}/{pod}/{container}", s.exec)
	s.handler = mux
	return s, nil
}

// Port is the port the server listens on.
func (s *Server) Port() int32 { return int32(s.listener.Addr().(*net.TCPAddr).Port) }

// Certificate is the PEM of the serving certificate, for the Node status.
func (s *Server) Certificate() string { return string(s.certPEM) }

// NeedLeaderElection is false: every agent serves its own node.
func (s *Server) NeedLeaderElection() bool { return false }

// Start serves HTTPS until ctx ends, then closes every connection.
func (s *Server) Start(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithName("agent-api")
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{s.cert},
			// Client certificates are verified by the authenticator against
			// the client CA, so that a bad one is a 401, not a TLS failure.
			ClientAuth: tls.RequestClientCert,
			// HTTP/1.1 only: exec upgrades the connection, which HTTP/2
			// cannot, and the kubelet's port avoids HTTP/2 too.
			NextProtos: []string{"http/1.1"},
		},
		BaseContext:  func(net.Listener) context.Context { return ctx },
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	errc := make(chan error, 1)
	log.Info("Serving the agent API", "address", s.listener.Addr().String())
	go func() { errc <- srv.ServeTLS(s.listener, "", "") }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		_ = srv.Close()
		return nil
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// writeStatus writes an API error as the API server does: a Status object.
func writeStatus(w http.ResponseWriter, err error) {
	var st metav1.Status
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		st = se.Status()
	} else {
		st = apierrors.NewInternalError(err).Status()
	}
	st.Kind, st.APIVersion = "Status", "v1"
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(int(st.Code))
	_ = json.NewEncoder(w).Encode(st)
}

// target is the container a request is about.
type target struct {
	pod       *corev1alpha1.Pod
	container string
	runtime   *pods.RuntimePod
}

// findTarget reads the pod from the agent's cache and what the runtime
// holds of it.
func (s *Server) findTarget(ctx context.Context, namespace, name, container string) (*target, error) {
	pod := &corev1alpha1.Pod{}
	err := s.opts.Pods.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, pod)
	if apierrors.IsNotFound(err) || (err == nil && pod.Spec.NodeName != s.opts.NodeName) {
		return nil, apierrors.NewNotFound(podsResource, name)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	if !hasContainer(pod, container) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, name))
	}
	rp, err := pods.GetRuntimePod(ctx, s.opts.Runtime, pod.UID)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return &target{pod: pod, container: container, runtime: rp}, nil
}

func hasContainer(pod *corev1alpha1.Pod, name string) bool {
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return true
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}
