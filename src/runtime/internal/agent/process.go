package agent

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/console"
	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"peerpods.io/runtime/pkg/agentapi"
)

// process is a container's init process or an exec'd one, with its stdio and, once it ran, its exit.
type process struct {
	execID string
	// spec is what an exec'd process runs (the init process's is in the bundle's config.json).
	spec *specs.Process
	// Without a terminal: pipes made before runc runs. With one: the socket runc sends the pty master to.
	pipes   runc.IO
	socket  *runc.Socket
	console console.Console
	stdout  *output
	stderr  *output

	stdinMu sync.Mutex
	stdin   io.WriteCloser

	pid atomic.Int64
	// running is set once the process was started (runc start for init, runc exec for the others).
	running  atomic.Bool
	exited   chan struct{}
	exitCode int
	exitedAt time.Time
}

func newProcess(execID string, p *agentapi.Process) (*process, error) {
	proc := &process{execID: execID, stdout: newOutput(), exited: make(chan struct{})}
	if p.GetTerminal() {
		socket, err := runc.NewTempConsoleSocket()
		if err != nil {
			return nil, internal(err, "making the console socket")
		}
		proc.socket, proc.stderr = socket, closedOutput()
		return proc, nil
	}
	uid, gid := int(p.GetUser().GetUid()), int(p.GetUser().GetGid())
	pipes, err := runc.NewPipeIO(uid, gid, func(o *runc.IOOption) { o.OpenStdin = p.GetStdin() })
	if err != nil {
		return nil, internal(err, "making the process's pipes")
	}
	proc.pipes, proc.stderr = pipes, newOutput()
	if p.GetStdin() {
		proc.stdin = pipes.Stdin()
	}
	go proc.stdout.pump(pipes.Stdout())
	go proc.stderr.pump(pipes.Stderr())
	return proc, nil
}

// ran records that runc made the process as pid: with a terminal it takes the pty master runc
// sent, and it notes the exit when the reaper sees it.
func (p *process) ran(pid int, exit <-chan runc.Exit) error {
	p.pid.Store(int64(pid))
	go func() {
		e := <-exit
		p.exitCode, p.exitedAt = e.Status, e.Timestamp
		close(p.exited)
	}()
	if p.socket == nil {
		return nil
	}
	socket := p.socket
	// runc sent the terminal before it returned; a socket that never gets it must not wedge the call.
	timer := time.AfterFunc(consoleTimeout, func() { _ = socket.Close() })
	master, err := socket.ReceiveMaster()
	timer.Stop()
	_ = socket.Close()
	p.socket = nil
	if err != nil {
		return internal(err, "receiving the terminal from runc")
	}
	p.console = master
	p.stdinMu.Lock()
	p.stdin = master
	p.stdinMu.Unlock()
	go p.stdout.pump(master)
	return nil
}

func (p *process) markStarted() { p.running.Store(true) }

func (p *process) started() bool { return p.running.Load() }

// awaitExit waits up to timeout for the process to have been reaped.
func (p *process) awaitExit(timeout time.Duration) {
	select {
	case <-p.exited:
	case <-time.After(timeout):
	}
}

func (p *process) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// closeIO releases the process's pipes, terminal and socket; its outputs end.
func (p *process) closeIO() {
	p.stdout.close()
	p.stderr.close()
	if p.pipes != nil {
		_ = p.pipes.Close()
	}
	if p.console != nil {
		_ = p.console.Close()
	}
	if p.socket != nil {
		_ = p.socket.Close()
	}
}

func (p *process) writeStdin(ctx context.Context, data []byte) (int, error) {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin == nil {
		return 0, precondition("process %q has no open stdin (ask for stdin when creating it; a terminal's opens once it runs)", p.execID)
	}
	if f, ok := p.stdin.(*os.File); ok {
		if deadline, ok := ctx.Deadline(); ok {
			_ = f.SetWriteDeadline(deadline)
		}
	}
	n, err := p.stdin.Write(data)
	if err != nil {
		if errors.Is(err, unix.EPIPE) {
			return n, precondition("process %q no longer reads its stdin", p.execID)
		}
		return n, internal(err, "writing to stdin")
	}
	return n, nil
}

// consoleTimeout bounds the wait for the terminal runc sends over the console socket.
const consoleTimeout = 10 * time.Second

// endOfTransmission is what ^D sends: a terminal's reader in canonical mode reads it as end-of-file.
const endOfTransmission = 0x04

// closeStdin gives the process end-of-file on stdin. A terminal stays open, since it also carries
// the output: it gets ^D, as when a person ends their input.
func (p *process) closeStdin() {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	switch {
	case p.stdin == nil:
	case p.console != nil:
		_, _ = p.stdin.Write([]byte{endOfTransmission})
	default:
		_ = p.stdin.Close()
	}
	p.stdin = nil
}

func (p *process) resize(rows, columns uint32) error {
	if p.console == nil {
		return precondition("process %q has no terminal", p.execID)
	}
	if err := p.console.Resize(console.WinSize{Height: uint16(rows), Width: uint16(columns)}); err != nil {
		return internal(err, "resizing the terminal")
	}
	return nil
}

func (p *process) wait(ctx context.Context) (*agentapi.WaitProcessResponse, error) {
	if !p.started() {
		return nil, precondition("process %q has not been started", p.execID)
	}
	select {
	case <-p.exited:
		return &agentapi.WaitProcessResponse{ExitCode: int32(p.exitCode), ExitedAtUnixMs: uint64(p.exitedAt.UnixMilli())}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
