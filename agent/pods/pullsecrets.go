package pods

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	corev1alpha1 "github.com/skiff-dev/skiff/api/core/v1alpha1"
)

// imageRegistry is the registry host of an image reference, docker.io when
// the reference names none, as upstream's parsing.
func imageRegistry(image string) string {
	first, _, found := strings.Cut(image, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io"
	}
	return first
}

type dockerConfig struct {
	Auths map[string]struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	} `json:"auths"`
}

// pullAuth finds credentials for the image's registry in the pod's
// imagePullSecrets (Secrets of type kubernetes.io/dockerconfigjson).
func (n *Node) pullAuth(ctx context.Context, pod *corev1alpha1.Pod, image string) *runtimeapi.AuthConfig {
	registry := imageRegistry(image)
	for _, ref := range pod.Spec.ImagePullSecrets {
		s := &corev1.Secret{}
		if err := n.opts.Reader.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, s); err != nil {
			continue
		}
		raw, ok := s.Data[corev1.DockerConfigJsonKey]
		if !ok {
			continue
		}
		var cfg dockerConfig
		if err := json.Unmarshal(raw, &cfg); err != nil {
			continue
		}
		for host, a := range cfg.Auths {
			h := strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
			h, _, _ = strings.Cut(h, "/")
			if h == "index.docker.io" {
				h = "docker.io"
			}
			if h != registry {
				continue
			}
			user, pass := a.Username, a.Password
			if a.Auth != "" {
				if b, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
					user, pass, _ = strings.Cut(string(b), ":")
				}
			}
			return &runtimeapi.AuthConfig{Username: user, Password: pass, ServerAddress: h}
		}
	}
	return nil
}
