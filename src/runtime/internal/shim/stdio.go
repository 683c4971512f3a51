package shim

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/containerd/fifo"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
)

// stdio are the FIFO paths containerd gives a process ("" for a stream it does not want).
type stdio struct {
	stdin, stdout, stderr string
	terminal              bool
}

// copier moves a process's stdio between containerd's FIFOs and the agent.
type copier struct {
	output sync.WaitGroup
	stdin  io.ReadCloser
}

// startCopy opens the FIFOs and copies until the process's output ends; wait() returns then.
// Output errors are logged by report, never fatal: a gone reader must not stop the process.
func startCopy(ctx context.Context, agent *agentclient.Client, ref *agentapi.ProcessRef, io stdio, report func(error)) (*copier, error) {
	c := &copier{}
	streams := []struct {
		path   string
		stream agentapi.OutputStream
	}{{io.stdout, agentapi.OutputStream_STDOUT}}
	if !io.terminal {
		streams = append(streams, struct {
			path   string
			stream agentapi.OutputStream
		}{io.stderr, agentapi.OutputStream_STDERR})
	}
	for _, s := range streams {
		if s.path == "" {
			continue
		}
		w, err := fifo.OpenFifo(ctx, s.path, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", s.path, err)
		}
		c.output.Add(1)
		go func(stream agentapi.OutputStream) {
			defer c.output.Done()
			defer w.Close()
			if err := agent.CopyOutput(context.WithoutCancel(ctx), ref, stream, w); err != nil {
				report(fmt.Errorf("copying %s of %s/%s: %w", stream, ref.GetContainerId(), ref.GetExecId(), err))
			}
		}(s.stream)
	}
	if io.stdin != "" {
		r, err := fifo.OpenFifo(context.WithoutCancel(ctx), io.stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", io.stdin, err)
		}
		c.stdin = r
		go func() {
			if err := agent.CopyStdin(context.WithoutCancel(ctx), ref, r); err != nil {
				report(fmt.Errorf("copying stdin of %s/%s: %w", ref.GetContainerId(), ref.GetExecId(), err))
			}
		}()
	}
	return c, nil
}

// closeStdin stops copying stdin (CloseIO); the copy then closes the process's stdin.
func (c *copier) closeStdin() {
	if c != nil && c.stdin != nil {
		_ = c.stdin.Close()
	}
}

// wait returns once every output stream has reached its end.
func (c *copier) wait() {
	if c != nil {
		c.output.Wait()
	}
}
