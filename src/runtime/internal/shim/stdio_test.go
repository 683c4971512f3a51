package shim

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
)

// stdinAgent records what reaches a process's stdin through the agent API.
type stdinAgent struct {
	agentapi.AgentService
	mu     sync.Mutex
	data   []byte
	closed chan struct{}
}

func (a *stdinAgent) WriteStdin(_ context.Context, r *agentapi.WriteStdinRequest) (*agentapi.WriteStdinResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.data = append(a.data, r.GetData()...)
	return &agentapi.WriteStdinResponse{Written: uint32(len(r.GetData()))}, nil
}

func (a *stdinAgent) CloseStdin(context.Context, *agentapi.ProcessRef) (*agentapi.Empty, error) {
	close(a.closed)
	return &agentapi.Empty{}, nil
}

// copyingStdin starts a stdin copy from a new FIFO and answers the FIFO's writer, as containerd holds it.
func copyingStdin(t *testing.T) (*stdinAgent, *copier, *os.File) {
	path := filepath.Join(t.TempDir(), "stdin")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	agent := &stdinAgent{closed: make(chan struct{})}
	ref := &agentapi.ProcessRef{ContainerId: "c", ExecId: "e"}
	link := newAgentLink(podVM{}, "", &agentclient.Client{AgentService: agent}, nil)
	c, err := startCopy(context.Background(), link, ref, stdio{stdin: path}, func(err error) { t.Error(err) })
	if err != nil {
		t.Fatal(err)
	}
	c.copyStdin(context.Background(), link, ref, func(err error) { t.Error(err) })
	writer, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return agent, c, writer
}

func awaitClosed(t *testing.T, agent *stdinAgent, within time.Duration) {
	select {
	case <-agent.closed:
	case <-time.After(within):
		t.Fatal("the process's stdin was never closed")
	}
}

func TestCloseIOAfterTheWriterClosedDeliversEverythingThenClosesStdin(t *testing.T) {
	agent, c, writer := copyingStdin(t)
	if _, err := writer.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	_ = writer.Close()
	c.closeStdin()
	awaitClosed(t, agent, time.Second)
	agent.mu.Lock()
	defer agent.mu.Unlock()
	if string(agent.data) != "hello\n" {
		t.Fatalf("stdin got %q, want %q", agent.data, "hello\n")
	}
}

func TestCloseIOWithAWriterStillOpenClosesStdinAfterTheDrain(t *testing.T) {
	agent, c, writer := copyingStdin(t)
	defer writer.Close()
	c.closeStdin()
	awaitClosed(t, agent, stdinDrain+time.Second)
}
