package shim

import (
	"sync"
	"time"

	"github.com/containerd/containerd/api/types/task"
	"google.golang.org/protobuf/types/known/timestamppb"
	"peerpods.io/runtime/pkg/agentapi"
)

// process is one of a task's processes (its init, or an exec) as the shim tracks it.
type process struct {
	ref    *agentapi.ProcessRef
	spec   *agentapi.Process
	io     stdio
	copy   *copier
	exited chan struct{}

	mu     sync.Mutex
	pid    uint32
	status task.Status
	exit   *agentapi.WaitProcessResponse
}

func newProcess(containerID, execID string, spec *agentapi.Process, io stdio) *process {
	return &process{
		ref:    &agentapi.ProcessRef{ContainerId: containerID, ExecId: execID},
		spec:   spec,
		io:     io,
		exited: make(chan struct{}),
		status: task.Status_CREATED,
	}
}

func (p *process) started(pid uint32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pid = pid
	p.status = task.Status_RUNNING
}

// exited records the exit once; a later call (a kill racing the agent's answer) changes nothing.
func (p *process) setExited(exit *agentapi.WaitProcessResponse) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit != nil {
		return false
	}
	p.exit = exit
	p.status = task.Status_STOPPED
	close(p.exited)
	return true
}

// snapshot answers pid, status and exit (nil while running) under the lock.
func (p *process) snapshot() (uint32, task.Status, *agentapi.WaitProcessResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pid, p.status, p.exit
}

// exitTimestamp is when the process exited, the zero time before that.
func exitTimestamp(exit *agentapi.WaitProcessResponse) *timestamppb.Timestamp {
	if exit == nil {
		return timestamppb.New(time.Time{})
	}
	return timestamppb.New(time.UnixMilli(int64(exit.GetExitedAtUnixMs())))
}

// signalled is the exit a process killed by signal has, as the agent reports one (128+N).
func signalled(signal uint32) *agentapi.WaitProcessResponse {
	return &agentapi.WaitProcessResponse{ExitCode: int32(128 + signal), ExitedAtUnixMs: uint64(time.Now().UnixMilli())}
}
