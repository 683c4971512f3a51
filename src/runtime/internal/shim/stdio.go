package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

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

// stdinDrain is how long CloseIO lets the stdin copy reach the FIFO's end on its own (containerd
// closed its writer first) before it closes the FIFO under the copy.
const stdinDrain = 2 * time.Second

// startCopy opens the FIFOs and copies the output until the process's output ends; wait() returns
// then. Stdin is copied from copyStdin on, once the process runs (a terminal's stdin opens then).
// Errors are logged by report, never fatal: a gone reader must not stop the process.
func startCopy(ctx context.Context, link *agentLink, ref *agentapi.ProcessRef, io stdio, report func(error)) (*copier, error) {
	c := &copier{}
	streams := map[agentapi.OutputStream]string{agentapi.OutputStream_STDOUT: io.stdout}
	if !io.terminal {
		streams[agentapi.OutputStream_STDERR] = io.stderr
	}
	for stream, path := range streams {
		if path == "" {
			continue
		}
		w, err := fifo.OpenFifo(ctx, path, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", path, err)
		}
		c.output.Add(1)
		go func() {
			defer c.output.Done()
			defer w.Close()
			ctx := context.WithoutCancel(ctx)
			_, err := onAgent(ctx, link, repeatable, func(agent *agentclient.Client) (struct{}, error) {
				return struct{}{}, agent.CopyOutput(ctx, ref, stream, w)
			})
			if err != nil {
				report(fmt.Errorf("copying %s of %s/%s: %w", stream, ref.GetContainerId(), ref.GetExecId(), err))
			}
		}()
	}
	if io.stdin != "" {
		r, err := fifo.OpenFifo(context.WithoutCancel(ctx), io.stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return nil, fmt.Errorf("opening %s: %w", io.stdin, err)
		}
		c.stdin = r
	}
	return c, nil
}

// copyStdin copies the stdin FIFO to the process until the FIFO ends or is closed; the process's
// stdin is closed then, whichever way the copy ended.
func (c *copier) copyStdin(ctx context.Context, link *agentLink, ref *agentapi.ProcessRef, report func(error)) {
	if c == nil || c.stdin == nil {
		return
	}
	go func() {
		defer c.stdin.Close()
		ctx := context.WithoutCancel(ctx)
		_, err := onAgent(ctx, link, repeatable, func(agent *agentclient.Client) (struct{}, error) {
			return struct{}{}, agent.CopyStdin(ctx, ref, c.stdin)
		})
		if err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, fifo.ErrReadClosed) {
			report(fmt.Errorf("copying stdin of %s/%s: %w", ref.GetContainerId(), ref.GetExecId(), err))
		}
	}()
}

// closeStdin (CloseIO) lets the stdin copy finish what containerd wrote, then ends it.
func (c *copier) closeStdin() {
	if c != nil && c.stdin != nil {
		time.AfterFunc(stdinDrain, func() { _ = c.stdin.Close() })
	}
}

// closeNow drops the stdin FIFO at once (a process that failed to start, or is deleted).
func (c *copier) closeNow() {
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
