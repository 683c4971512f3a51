// Package agentclient is the node's side of agent.proto: a ttrpc client that sends the protocol
// version with every call, checks the agent speaks it, and moves trees and stdio in chunks.
package agentclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/ttrpc"
	"peerpods.io/runtime/pkg/agentapi"
)

// ChunkBytes is the size of one WriteTree or WriteStdin chunk (ttrpc frames hold at most 4 MiB).
const ChunkBytes = 1 << 20

// Client is agentapi.AgentService over one connection, plus the chunked transfers.
type Client struct {
	agentapi.AgentService
	ttrpc *ttrpc.Client
}

// New speaks agent.proto over conn, stamping every call with this client's protocol version.
func New(conn net.Conn) *Client {
	client := ttrpc.NewClient(conn, ttrpc.WithUnaryClientInterceptor(withProtocol(agentapi.ProtocolVersion)))
	return &Client{AgentService: agentapi.NewAgentClient(client), ttrpc: client}
}

func withProtocol(version uint32) ttrpc.UnaryClientInterceptor {
	value := strconv.FormatUint(uint64(version), 10)
	return func(ctx context.Context, req *ttrpc.Request, resp *ttrpc.Response, _ *ttrpc.UnaryClientInfo, invoke ttrpc.Invoker) error {
		req.Metadata = append(req.Metadata, &ttrpc.KeyValue{Key: agentapi.ProtocolMetadataKey, Value: value})
		return invoke(ctx, req, resp)
	}
}

// Dial connects to an agent endpoint ("tcp:HOST:PORT", "unix:PATH", "HOST:PORT" or a socket path)
// and checks that the agent speaks this client's protocol version.
func Dial(ctx context.Context, endpoint string) (*Client, error) {
	return DialTLS(ctx, endpoint, nil)
}

// DialTLS is Dial over TLS with config (pkg/agenttls.ClientConfig), or plain when config is nil:
// the VM's agent port directly, where the node's forwarded socket is not in between.
func DialTLS(ctx context.Context, endpoint string, config *tls.Config) (*Client, error) {
	conn, err := ConnectTLS(ctx, endpoint, config)
	if err != nil {
		return nil, err
	}
	client := New(conn)
	if err := client.Handshake(ctx); err != nil {
		_ = client.Close()
		return nil, err
	}
	return client, nil
}

// Connect opens a connection to an agent endpoint (see Dial), without speaking to it.
func Connect(ctx context.Context, endpoint string) (net.Conn, error) {
	network, address := splitEndpoint(endpoint)
	return (&net.Dialer{}).DialContext(ctx, network, address)
}

// ConnectTLS is Connect, then a TLS handshake with config when it is not nil.
func ConnectTLS(ctx context.Context, endpoint string, config *tls.Config) (net.Conn, error) {
	conn, err := Connect(ctx, endpoint)
	if err != nil || config == nil {
		return conn, err
	}
	secure := tls.Client(conn, config)
	if err := secure.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("TLS with the agent at %s: %w", endpoint, err)
	}
	return secure, nil
}

func splitEndpoint(endpoint string) (network, address string) {
	if rest, ok := strings.CutPrefix(endpoint, "unix:"); ok {
		return "unix", rest
	}
	if rest, ok := strings.CutPrefix(endpoint, "tcp:"); ok {
		return "tcp", rest
	}
	if strings.HasPrefix(endpoint, "/") {
		return "unix", endpoint
	}
	return "tcp", endpoint
}

// Handshake fails, naming both sides' versions, when the agent does not speak this client's protocol.
func (c *Client) Handshake(ctx context.Context) error {
	version, err := c.Version(ctx, &agentapi.VersionRequest{})
	if err != nil {
		return fmt.Errorf("asking the agent its version: %w", err)
	}
	if !slices.Contains(version.GetProtocolVersions(), agentapi.ProtocolVersion) {
		return fmt.Errorf("the agent (%s) speaks protocol versions %v, this client speaks %d: the node's peerpods and the pod VM image do not match",
			version.GetAgentVersion(), version.GetProtocolVersions(), agentapi.ProtocolVersion)
	}
	return nil
}

func (c *Client) Close() error {
	return c.ttrpc.Close()
}

// PutTree uploads the tar stream r as one of the container's trees and answers what was unpacked.
func (c *Client) PutTree(ctx context.Context, containerID, tree string, r io.Reader) (*agentapi.WriteTreeResponse, error) {
	buf := make([]byte, ChunkBytes)
	var offset uint64
	for {
		n, err := io.ReadFull(r, buf)
		last := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !last {
			return nil, fmt.Errorf("reading tree %q: %w", tree, err)
		}
		resp, callErr := c.WriteTree(ctx, &agentapi.WriteTreeRequest{ContainerId: containerID, Tree: tree, Offset: offset, Data: buf[:n], Last: last})
		if callErr != nil {
			return nil, callErr
		}
		offset += uint64(n)
		if last {
			return resp, nil
		}
	}
}

// CopyOutput writes one output stream of a process to w until it ends.
func (c *Client) CopyOutput(ctx context.Context, ref *agentapi.ProcessRef, stream agentapi.OutputStream, w io.Writer) error {
	for {
		resp, err := c.ReadOutput(ctx, &agentapi.ReadOutputRequest{Process: ref, Stream: stream})
		if err != nil {
			return err
		}
		if _, err := w.Write(resp.GetData()); err != nil {
			return err
		}
		if resp.GetEof() {
			return nil
		}
	}
}

// CopyStdin writes r to the process's stdin in chunks. However r ends (end of file, a read error,
// closed under the copy), the process's stdin is closed then, so the process never waits on it.
func (c *Client) CopyStdin(ctx context.Context, ref *agentapi.ProcessRef, r io.Reader) error {
	copyErr := c.writeStdin(ctx, ref, r)
	_, closeErr := c.CloseStdin(ctx, ref)
	return errors.Join(copyErr, closeErr)
}

func (c *Client) writeStdin(ctx context.Context, ref *agentapi.ProcessRef, r io.Reader) error {
	buf := make([]byte, ChunkBytes)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := c.WriteStdin(ctx, &agentapi.WriteStdinRequest{Process: ref, Data: buf[:n]}); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
