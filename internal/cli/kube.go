package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/internal/scheme"
)

// kubeFlags are the kubectl connection flags of the plugin commands. When
// kubectl runs the plugin it passes KUBECONFIG through the environment; the
// flags are for running skiff directly.
type kubeFlags struct {
	kubeconfig string
	context    string
	namespace  string

	// newClient, when set, replaces the client built from the flags (tests).
	newClient func() (client.Client, string, error)
}

func (k *kubeFlags) add(cmd *cobra.Command, namespaced bool) {
	f := cmd.PersistentFlags()
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&k.context, "context", "", "kubeconfig context to use")
	if namespaced {
		f.StringVarP(&k.namespace, "namespace", "n", "", "namespace of the object (default: the context's namespace)")
	}
}

func (k *kubeFlags) clientConfig() clientcmd.ClientConfig {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = k.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: k.context}
	if k.namespace != "" {
		overrides.Context.Namespace = k.namespace
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
}

// client returns a client with skiff's scheme and the namespace to use.
func (k *kubeFlags) client() (client.Client, string, error) {
	if k.newClient != nil {
		c, ns, err := k.newClient()
		if k.namespace != "" {
			ns = k.namespace
		}
		return c, ns, err
	}
	cc := k.clientConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("loading kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, "", err
	}
	c, err := newClient(cfg)
	return c, ns, err
}

func newClient(cfg *rest.Config) (client.Client, error) {
	return client.New(cfg, client.Options{Scheme: scheme.New()})
}

// splitResourceArgs accepts "kind/name" or "kind name" and returns both.
func splitResourceArgs(args []string) (kind, name string, err error) {
	switch len(args) {
	case 1:
		if k, n, ok := strings.Cut(args[0], "/"); ok && k != "" && n != "" {
			return k, n, nil
		}
	case 2:
		if !strings.Contains(args[0], "/") {
			return args[0], args[1], nil
		}
	}
	return "", "", fmt.Errorf("want TYPE/NAME or TYPE NAME, such as deployment/web, got %q", strings.Join(args, " "))
}
