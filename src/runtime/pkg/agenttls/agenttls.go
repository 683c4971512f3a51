// Package agenttls is mutual TLS on the agent channel: the pod VM's agent serves with the
// certificate issued for its VM and accepts only clients whose certificate a cluster agent CA
// signed; the node's clients present such a certificate and accept only the VM they expect.
package agenttls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
)

// The files of a TLS folder: the own certificate and key, and the trust bundle (one or more CAs,
// old and new during a rotation).
const (
	CertFile   = "tls.crt"
	KeyFile    = "tls.key"
	BundleFile = "ca.crt"
)

// IdentityPrefix starts the URI SAN that binds a VM's certificate to its instance name
// (src/agent-tls/identity.ts writes the same).
const IdentityPrefix = "urn:peerpods:vm:"

// Present reports whether dir holds a certificate, a key and a trust bundle.
func Present(dir string) bool {
	if dir == "" {
		return false
	}
	for _, name := range []string{CertFile, KeyFile, BundleFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

func load(dir string) (tls.Certificate, *x509.CertPool, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("agent TLS certificate in %s: %w", dir, err)
	}
	bundle, err := os.ReadFile(filepath.Join(dir, BundleFile))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("agent TLS trust bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return tls.Certificate{}, nil, fmt.Errorf("agent TLS trust bundle %s holds no PEM certificate", filepath.Join(dir, BundleFile))
	}
	return pair, pool, nil
}

// ServerConfig is the agent's side: TLS 1.3 only, a client certificate from the bundle's CAs required.
func ServerConfig(dir string) (*tls.Config, error) {
	pair, pool, err := load(dir)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientConfig is the node's side: TLS 1.3, this folder's client certificate, and a server whose
// certificate the bundle's CAs signed for the VM named `instance`. Host names play no part: a VM
// is known by its instance name, not by the address it is reached at.
func ClientConfig(dir, instance string) (*tls.Config, error) {
	pair, pool, err := load(dir)
	if err != nil {
		return nil, err
	}
	want := IdentityPrefix + instance
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{pair},
		InsecureSkipVerify: true, // replaced by VerifyConnection: the chain and the instance identity
		VerifyConnection: func(state tls.ConnectionState) error {
			if len(state.PeerCertificates) == 0 {
				return errors.New("the agent presented no certificate")
			}
			leaf := state.PeerCertificates[0]
			intermediates := x509.NewCertPool()
			for _, cert := range state.PeerCertificates[1:] {
				intermediates.AddCert(cert)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return fmt.Errorf("the agent's certificate: %w", err)
			}
			if !slices.ContainsFunc(leaf.URIs, func(u *url.URL) bool { return u.String() == want }) {
				return fmt.Errorf("the agent's certificate is not for VM %q", instance)
			}
			return nil
		},
	}, nil
}
