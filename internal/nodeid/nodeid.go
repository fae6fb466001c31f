// Package nodeid gives each skiff-agent an identity of its own, as the
// kubelet has one: user system:skiff-node:<node> in group system:skiff-nodes,
// authenticated by a client certificate that the cluster's
// kubernetes.io/kube-apiserver-client signer issues through a
// CertificateSigningRequest. What that identity may do is decided elsewhere:
// the agent's ClusterRole (config/rbac/agent), the per-node Roles of
// controllers/nodeaccess, and the skiff-node-restriction
// ValidatingAdmissionPolicy (config/noderestriction).
//
// The package owns the naming rules and the issuing of credentials; it must
// not grant anything.
package nodeid

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	// Group holds every node identity.
	Group = "system:skiff-nodes"
	// UserPrefix starts the user name of a node identity; the node's name
	// follows it.
	UserPrefix = "system:skiff-node:"
	// SignerName is the signer that issues node client certificates: the
	// API server's client signer, run by kube-controller-manager's
	// csrsigning controller.
	SignerName = certificatesv1.KubeAPIServerClientSignerName
)

// UserName is the user of a node's identity.
func UserName(node string) string { return UserPrefix + node }

// NodeName is the node of a user name, and whether the user is a node identity.
func NodeName(user string) (string, bool) {
	node, ok := strings.CutPrefix(user, UserPrefix)
	return node, ok && node != ""
}

// ValidateNodeName checks that a name can be a Node's (a DNS subdomain).
func ValidateNodeName(node string) error {
	if errs := validation.IsDNS1123Subdomain(node); len(errs) > 0 {
		return fmt.Errorf("node name %q: %s", node, strings.Join(errs, "; "))
	}
	return nil
}

// Options tune Issue.
type Options struct {
	// Expiration is how long the certificate is valid; 0 lets the signer
	// decide (kube-controller-manager's --cluster-signing-duration, a year
	// by default). The signer may shorten it, never lengthen it.
	Expiration time.Duration
	// Timeout bounds the wait for the signed certificate (default 1 minute).
	Timeout time.Duration
}

// Credentials are a node identity's key and certificate.
type Credentials struct {
	Node string
	// CertPEM and KeyPEM are the client certificate and its private key.
	CertPEM, KeyPEM []byte
}

// Issue creates a private key for node, asks for a certificate with a
// CertificateSigningRequest (CN system:skiff-node:<node>, O
// system:skiff-nodes, signer kubernetes.io/kube-apiserver-client), approves
// it, waits for the signer and returns the credentials. The caller's
// identity must be allowed to create and approve CertificateSigningRequests
// for that signer (a cluster administrator is). The request is deleted once
// the certificate is read.
func Issue(ctx context.Context, cs kubernetes.Interface, node string, opts Options) (*Credentials, error) {
	if err := ValidateNodeName(node); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the node key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: UserName(node), Organization: []string{Group}},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("creating the certificate request: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "skiff-node-" + shorten(node, 200) + "-"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: SignerName,
			Usages:     []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		},
	}
	if opts.Expiration > 0 {
		secs := int32(opts.Expiration / time.Second)
		csr.Spec.ExpirationSeconds = &secs
	}
	csrs := cs.CertificatesV1().CertificateSigningRequests()
	if csr, err = csrs.Create(ctx, csr, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating the CertificateSigningRequest for node %s: %w", node, err)
	}
	defer func() { _ = csrs.Delete(context.WithoutCancel(ctx), csr.Name, metav1.DeleteOptions{}) }()

	csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: "SkiffNodeCredentials", Message: "Approved by skiff node credentials for node " + node,
	})
	if csr, err = csrs.UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return nil, fmt.Errorf("approving CertificateSigningRequest %s: %w", csr.Name, err)
	}

	timeout := opts.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	var cert []byte
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		got, err := csrs.Get(ctx, csr.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range got.Status.Conditions {
			if c.Type == certificatesv1.CertificateFailed || c.Type == certificatesv1.CertificateDenied {
				return false, fmt.Errorf("CertificateSigningRequest %s %s: %s", csr.Name, c.Type, c.Message)
			}
		}
		cert = got.Status.Certificate
		return len(cert) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for the certificate of node %s (does kube-controller-manager run the csrsigning controller with the cluster CA?): %w", node, err)
	}
	return &Credentials{
		Node:    node,
		CertPEM: cert,
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func shorten(s string, n int) string {
	if len(s) > n {
		return strings.TrimRight(s[:n], ".-")
	}
	return s
}

// Config returns a client configuration for the credentials that reaches
// the same API server as base, trusting the same certificate authority.
func (c *Credentials) Config(base *rest.Config) *rest.Config {
	cfg := rest.AnonymousClientConfig(base)
	cfg.CertData, cfg.KeyData = c.CertPEM, c.KeyPEM
	return cfg
}

// Kubeconfig renders the credentials as a kubeconfig for the API server of
// base, with one context named after the node.
func (c *Credentials) Kubeconfig(base *rest.Config) ([]byte, error) {
	ca := base.CAData
	if len(ca) == 0 && base.CAFile != "" {
		raw, err := os.ReadFile(base.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the API server's CA: %w", err)
		}
		ca = raw
	}
	name := "skiff-node-" + c.Node
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{
		Server: base.Host, CertificateAuthorityData: ca,
		InsecureSkipTLSVerify: base.Insecure, TLSServerName: base.ServerName,
	}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertPEM, ClientKeyData: c.KeyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	return clientcmd.Write(*cfg)
}
