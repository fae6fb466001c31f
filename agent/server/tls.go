package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Validity of the self-signed serving certificate: a year, renewed at
// start when less than a month is left.
const (
	certValidity = 365 * 24 * time.Hour
	certRenewal  = 30 * 24 * time.Hour
)

// Files of the self-signed serving certificate under Config.CertDir.
const (
	certFile = "agent.crt"
	keyFile  = "agent.key"
)

// servingCert loads the certificate and key files when both are given;
// otherwise it reuses the self-signed certificate under dir when it is
// valid for a while and covers every host, or writes a new one. It returns
// the key pair and the PEM clients should trust.
func servingCert(certPath, keyPath, dir, node string, hosts []string, now time.Time) (tls.Certificate, []byte, error) {
	if certPath != "" || keyPath != "" {
		if certPath == "" || keyPath == "" {
			return tls.Certificate{}, nil, fmt.Errorf("--tls-cert-file and --tls-private-key-file go together")
		}
		certPEM, err := os.ReadFile(certPath)
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		keyPEM, err := os.ReadFile(keyPath)
		if err != nil {
			return tls.Certificate{}, nil, err
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return tls.Certificate{}, nil, fmt.Errorf("loading %s and %s: %w", certPath, keyPath, err)
		}
		return pair, certPEM, nil
	}
	certPath, keyPath = filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	certPEM, errC := os.ReadFile(certPath)
	keyPEM, errK := os.ReadFile(keyPath)
	if errC == nil && errK == nil {
		if pair, err := tls.X509KeyPair(certPEM, keyPEM); err == nil && reusable(pair, hosts, now) {
			return pair, certPEM, nil
		}
	}
	certPEM, keyPEM, err := selfSigned(node, hosts, now)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	return pair, certPEM, err
}

// reusable tells whether a certificate is valid for more than certRenewal
// and names every host.
func reusable(pair tls.Certificate, hosts []string, now time.Time) bool {
	if len(pair.Certificate) == 0 {
		return false
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || now.Before(c.NotBefore) || c.NotAfter.Sub(now) < certRenewal {
		return false
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		} else if !slices.Contains(c.DNSNames, h) {
			return false
		}
	}
	return true
}

// selfSigned makes an ECDSA P-256 certificate that signs itself, for the
// hosts (IP addresses and names) plus localhost and 127.0.0.1.
func selfSigned(node string, hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: fmt.Sprintf("%s@%d", node, now.Unix()), Organization: []string{"skiff-agent"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		// A self-signed certificate is its own CA: clients put it in
		// their roots.
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range append([]string{"localhost", "127.0.0.1", node}, hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	var cb, kb bytes.Buffer
	_ = pem.Encode(&cb, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	_ = pem.Encode(&kb, &pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return cb.Bytes(), kb.Bytes(), nil
}
