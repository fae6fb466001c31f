package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// Default cache lifetimes, as the kubelet's webhook authentication and
// authorization.
const (
	DefaultAuthenticationCacheTTL = 2 * time.Minute
	DefaultAuthorizationAllowTTL  = 5 * time.Minute
	DefaultAuthorizationDenyTTL   = 30 * time.Second
)

// Subresources the agent API authorizes on pods.core.skiff.dev.
const (
	SubresourceLog  = "log"
	SubresourceExec = "exec"
)

// podsResource is what every request is authorized on.
var podsResource = schema.GroupResource{Group: corev1alpha1.GroupVersion.Group, Resource: "pods"}

// webhookBackoff retries TokenReviews and SubjectAccessReviews that fail
// for transient reasons, as the API server's delegated authentication.
var webhookBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}

// auth authenticates and authorizes requests against the API server.
type auth struct {
	authn authenticator.Request
	authz authorizer.Authorizer
}

func newAuth(cs kubernetes.Interface, cfg Config) (*auth, error) {
	ac := authenticatorfactory.DelegatingAuthenticatorConfig{
		TokenAccessReviewClient:  cs.AuthenticationV1(),
		TokenAccessReviewTimeout: 10 * time.Second,
		WebhookRetryBackoff:      &webhookBackoff,
		CacheTTL:                 cfg.AuthenticationCacheTTL,
	}
	if cfg.ClientCAFile != "" {
		ca, err := os.ReadFile(cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the client CA: %w", err)
		}
		if ac.ClientCertificateCAContentProvider, err = dynamiccertificates.NewStaticCAContent("client-ca", ca); err != nil {
			return nil, fmt.Errorf("loading the client CA %s: %w", cfg.ClientCAFile, err)
		}
	}
	authn, _, err := ac.New()
	if err != nil {
		return nil, err
	}
	authz, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: cs.AuthorizationV1(),
		AllowCacheTTL:             cfg.AuthorizationAllowTTL,
		DenyCacheTTL:              cfg.AuthorizationDenyTTL,
		WebhookRetryBackoff:       &webhookBackoff,
	}.New()
	if err != nil {
		return nil, err
	}
	return &auth{authn: authn, authz: authz}, nil
}

// Attributes is what a request on a pod is authorized as: the verb on the
// subresource of pods.core.skiff.dev, in the pod's namespace, by name.
func Attributes(u user.Info, verb, subresource, namespace, pod string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{
		User:            u,
		Verb:            verb,
		Namespace:       namespace,
		APIGroup:        corev1alpha1.GroupVersion.Group,
		APIVersion:      corev1alpha1.GroupVersion.Version,
		Resource:        podsResource.Resource,
		Subresource:     subresource,
		Name:            pod,
		ResourceRequest: true,
	}
}

// check authenticates the request and authorizes verb on the pod's
// subresource. It writes 401, 403 or 500 and returns false when the request
// may not go on.
func (a *auth) check(w http.ResponseWriter, r *http.Request, verb, subresource, namespace, pod string) (user.Info, bool) {
	resp, ok, err := a.authn.AuthenticateRequest(r)
	if err != nil || !ok {
		if err != nil {
			ctrl.LoggerFrom(r.Context()).V(2).Info("Authentication failed", "err", err.Error())
		}
		writeStatus(w, apierrors.NewUnauthorized("Unauthorized"))
		return nil, false
	}
	attrs := Attributes(resp.User, verb, subresource, namespace, pod)
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	decision, reason, err := a.authz.Authorize(ctx, attrs)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("authorizing user %q: %w", resp.User.GetName(), err)))
		return nil, false
	}
	if decision != authorizer.DecisionAllow {
		msg := fmt.Sprintf("User %q cannot %s resource %q in API group %q in the namespace %q",
			resp.User.GetName(), verb, podsResource.Resource+"/"+subresource, podsResource.Group, namespace)
		if reason != "" {
			msg += ": " + reason
		}
		writeStatus(w, apierrors.NewForbidden(podsResource, pod, errors.New(msg)))
		return nil, false
	}
	return resp.User, true
}
