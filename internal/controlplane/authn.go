package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// clientCA is the API server's client certificate authority. Unlike
// envtest's own, its key is on disk, so that kube-controller-manager's
// csrsigning controller signs CertificateSigningRequests of signer
// kubernetes.io/kube-apiserver-client with it (node identities), and the
// certificates it signs stay valid when the control plane restarts on the
// same WorkDir.
type clientCA struct {
	certFile, keyFile string
	cert              *x509.Certificate
	key               crypto.Signer
}

var _ envtest.Authn = (*clientCA)(nil)

// loadOrCreateClientCA reads the CA in dir, or creates it there.
func loadOrCreateClientCA(dir string) (*clientCA, error) {
	ca := &clientCA{certFile: filepath.Join(dir, "client-ca.crt"), keyFile: filepath.Join(dir, "client-ca.key")}
	certs, certErr := certutil.CertsFromFile(ca.certFile)
	key, keyErr := keyutil.PrivateKeyFromFile(ca.keyFile)
	if certErr == nil && keyErr == nil && len(certs) == 1 {
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: not a signing key", ca.keyFile)
		}
		ca.cert, ca.key = certs[0], signer
		return ca, nil
	}
	if !errors.Is(certErr, os.ErrNotExist) && certErr != nil {
		return nil, fmt.Errorf("reading the client CA: %w", certErr)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	cert, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "skiff-client-ca"}, k)
	if err != nil {
		return nil, fmt.Errorf("creating the client CA: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(ca.keyFile, pem.EncodeToMemory(&pem.Block{Type: keyutil.ECPrivateKeyBlockType, Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(ca.certFile, pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: cert.Raw}), 0o644); err != nil {
		return nil, err
	}
	ca.cert, ca.key = cert, k
	return ca, nil
}

// Configure points the API server at the CA.
func (ca *clientCA) Configure(_ string, args *envtest.Arguments) error {
	args.Set("client-ca-file", ca.certFile)
	return nil
}

// Start does nothing: the CA is on disk already.
func (ca *clientCA) Start() error { return nil }

// Stop does nothing: the CA stays with the WorkDir.
func (ca *clientCA) Stop() error { return nil }

// AddUser signs a client certificate for the user.
func (ca *clientCA) AddUser(user envtest.User, base *rest.Config) (*rest.Config, error) {
	certPEM, keyPEM, err := ca.sign(user.Name, user.Groups, 7*24*time.Hour)
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(base)
	cfg.CertData, cfg.KeyData = certPEM, keyPEM
	return cfg, nil
}

func (ca *clientCA) sign(name string, groups []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: groups},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, k.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing a client certificate for %s: %w", name, err)
	}
	keyDER, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: certutil.CertificateBlockType, Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: keyutil.ECPrivateKeyBlockType, Bytes: keyDER}), nil
}
