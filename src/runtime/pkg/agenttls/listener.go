package agenttls

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Listener completes the TLS handshake of every accepted connection before handing it on, so a
// refused client (no certificate, another CA's, an expired one) is logged here with its reason
// instead of surfacing as a read error deep in the server.
type Listener struct {
	inner   net.Listener
	config  *tls.Config
	timeout time.Duration
	log     *slog.Logger

	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
	err       error
}

// NewListener serves TLS with config on inner; a handshake gets at most timeout.
func NewListener(inner net.Listener, config *tls.Config, timeout time.Duration, log *slog.Logger) *Listener {
	l := &Listener{inner: inner, config: config, timeout: timeout, log: log, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	for {
		conn, err := l.inner.Accept()
		if err != nil {
			l.err = err
			l.closeOnce.Do(func() { close(l.done) })
			return
		}
		go l.handshake(conn)
	}
}

func (l *Listener) handshake(conn net.Conn) {
	server := tls.Server(conn, l.config)
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	if err := server.HandshakeContext(ctx); err != nil {
		l.log.Warn("refused a client of the agent port", "remote", conn.RemoteAddr().String(), "reason", err.Error())
		_ = conn.Close()
		return
	}
	select {
	case l.conns <- server:
	case <-l.done:
		_ = server.Close()
	}
}

// Accept returns the next connection whose handshake succeeded.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case conn := <-l.conns:
		return conn, nil
	case <-l.done:
		return nil, l.err
	}
}

// Close stops accepting; connections handed out stay open.
func (l *Listener) Close() error {
	return l.inner.Close()
}

// Addr is the inner listener's address.
func (l *Listener) Addr() net.Addr {
	return l.inner.Addr()
}
