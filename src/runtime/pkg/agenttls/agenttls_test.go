package agenttls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func issue(t *testing.T, parent *issued, name string, usage x509.ExtKeyUsage, uris []string, notAfter time.Time) *issued {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-2 * time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	for _, raw := range uris {
		u, _ := url.Parse(raw)
		template.URIs = append(template.URIs, u)
	}
	signer, signerKey := template, key
	if parent == nil {
		template.IsCA, template.BasicConstraintsValid = true, true
		template.KeyUsage |= x509.KeyUsageCertSign
	} else {
		template.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, signer, &key.PublicKey, signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &issued{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func writeDir(t *testing.T, own *issued, bundle ...*issued) string {
	t.Helper()
	dir := t.TempDir()
	keyDer, err := x509.MarshalPKCS8PrivateKey(own.key)
	if err != nil {
		t.Fatal(err)
	}
	var cas []byte
	for _, ca := range bundle {
		cas = append(cas, ca.pem...)
	}
	files := map[string][]byte{CertFile: own.pem, KeyFile: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDer}), BundleFile: cas}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	ca, otherCA, newCA *issued
	server             string // the VM's TLS folder
	addr               string
	log                *syncBuffer
}

// start serves "hello" to every connection the listener hands on.
func start(t *testing.T) *fixture {
	t.Helper()
	year := time.Now().Add(365 * 24 * time.Hour)
	f := &fixture{ca: issue(t, nil, "ca", 0, nil, year), otherCA: issue(t, nil, "other", 0, nil, year), newCA: issue(t, nil, "new", 0, nil, year), log: &syncBuffer{}}
	vm := issue(t, f.ca, "vm", x509.ExtKeyUsageServerAuth, []string{IdentityPrefix + "pp-1"}, year)
	f.server = writeDir(t, vm, f.ca, f.newCA)
	config, err := ServerConfig(f.server)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listener := NewListener(inner, config, 5*time.Second, slog.New(slog.NewTextHandler(f.log, nil)))
	t.Cleanup(func() { _ = listener.Close() })
	f.addr = inner.Addr().String()
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			_, _ = conn.Write([]byte("hello"))
			_ = conn.Close()
		}
	}()
	return f
}

// greet connects with config and returns what the agent's side sent, or the error.
func (f *fixture) greet(config *tls.Config) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", f.addr, config)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	data, err := io.ReadAll(conn)
	return string(data), err
}

func (f *fixture) clientConfig(t *testing.T, client *issued, instance string) *tls.Config {
	t.Helper()
	config, err := ClientConfig(writeDir(t, client, f.ca), instance)
	if err != nil {
		t.Fatal(err)
	}
	return config
}

func (f *fixture) waitForRefusal(t *testing.T, reason string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(f.log.String(), reason) {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal saying %q logged; log: %s", reason, f.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAgentAcceptsAClientOfTheClusterCA(t *testing.T) {
	f := start(t)
	year := time.Now().Add(365 * 24 * time.Hour)
	got, err := f.greet(f.clientConfig(t, issue(t, f.ca, "node", x509.ExtKeyUsageClientAuth, nil, year), "pp-1"))
	if err != nil || got != "hello" {
		t.Fatalf("got %q, %v", got, err)
	}
	// During a rotation the VM trusts the new CA too.
	got, err = f.greet(f.clientConfig(t, issue(t, f.newCA, "node", x509.ExtKeyUsageClientAuth, nil, year), "pp-1"))
	if err != nil || got != "hello" {
		t.Fatalf("new CA's client: got %q, %v", got, err)
	}
}

func TestAgentRefusesClientsWithoutAGoodCertificate(t *testing.T) {
	year := time.Now().Add(365 * 24 * time.Hour)
	cases := map[string]struct {
		client func(f *fixture) *issued
		reason string
	}{
		"no certificate": {func(*fixture) *issued { return nil }, "didn't provide a certificate"},
		"another CA":     {func(f *fixture) *issued { return issue(t, f.otherCA, "x", x509.ExtKeyUsageClientAuth, nil, year) }, "unknown authority"},
		"expired": {func(f *fixture) *issued {
			return issue(t, f.ca, "x", x509.ExtKeyUsageClientAuth, nil, time.Now().Add(-time.Hour))
		}, "expired"},
		"server-only usage": {func(f *fixture) *issued { return issue(t, f.ca, "x", x509.ExtKeyUsageServerAuth, nil, year) }, "incompatible key usage"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f := start(t)
			config := f.clientConfig(t, issue(t, f.ca, "node", x509.ExtKeyUsageClientAuth, nil, year), "pp-1")
			if client := c.client(f); client == nil {
				config.Certificates = nil
			} else {
				// Sent whatever CAs the agent asks for, as a client that tries its luck would.
				config.Certificates = nil
				config.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &tls.Certificate{Certificate: [][]byte{client.cert.Raw}, PrivateKey: client.key}, nil
				}
			}
			if got, err := f.greet(config); err == nil || got != "" {
				t.Fatalf("the agent answered %q (err %v)", got, err)
			}
			f.waitForRefusal(t, c.reason)
		})
	}
}

func TestAgentRefusesPlainConnections(t *testing.T) {
	f := start(t)
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("\x00\x00\x00\x10 plain ttrpc frame"))
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if data, _ := io.ReadAll(conn); strings.Contains(string(data), "hello") {
		t.Fatal("a plain connection was served")
	}
	f.waitForRefusal(t, "refused a client")
}

func TestClientRefusesAVMOtherThanTheOneExpected(t *testing.T) {
	f := start(t)
	year := time.Now().Add(365 * 24 * time.Hour)
	_, err := f.greet(f.clientConfig(t, issue(t, f.ca, "node", x509.ExtKeyUsageClientAuth, nil, year), "pp-2"))
	if err == nil || !strings.Contains(err.Error(), `not for VM "pp-2"`) {
		t.Fatalf("want a refusal of the VM, got %v", err)
	}
}

func TestPresentNeedsAllThreeFiles(t *testing.T) {
	dir := t.TempDir()
	if Present(dir) || Present("") {
		t.Fatal("an empty folder is not a TLS folder")
	}
	for _, name := range []string{CertFile, KeyFile, BundleFile} {
		_ = os.WriteFile(filepath.Join(dir, name), nil, 0o600)
	}
	if !Present(dir) {
		t.Fatal("all three files are there")
	}
	if _, err := ServerConfig(dir); err == nil {
		t.Fatal("empty files are no certificate")
	}
}
