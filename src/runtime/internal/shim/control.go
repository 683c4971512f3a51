package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/emptypb"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
)

// Delete removes an exec, a container from the VM, or the sandbox (its VM handed back).
func (s *Service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if err := s.deleteInVM(ctx, c, p); err != nil {
		log.G(ctx).WithField("pod", c.pod).WithField("task", r.ID).WithError(err).Error("deleting")
		return nil, errgrpc.ToGRPC(err)
	}
	p.copy.closeNow()
	pid, _, exit := p.snapshot()
	s.mu.Lock()
	if r.ExecID == "" {
		delete(s.containers, r.ID)
	} else {
		delete(c.execs, r.ExecID)
	}
	s.mu.Unlock()
	if r.ExecID == "" {
		s.publish(&eventstypes.TaskDelete{ContainerID: r.ID, Pid: pid, ExitStatus: uint32(exit.GetExitCode()), ExitedAt: exitTimestamp(exit), ID: r.ID})
	}
	return &taskAPI.DeleteResponse{Pid: pid, ExitStatus: uint32(exit.GetExitCode()), ExitedAt: exitTimestamp(exit)}, nil
}

func (s *Service) deleteInVM(ctx context.Context, c *container, p *process) error {
	if c.kind != kindSandbox {
		_, err := call(ctx, s, repeatable, func(agent *agentclient.Client) (*agentapi.Empty, error) {
			if p.ref.GetExecId() != "" {
				return agent.DeleteProcess(ctx, p.ref)
			}
			return agent.DeleteContainer(ctx, &agentapi.DeleteContainerRequest{ContainerId: c.id, Force: true})
		})
		// nothing is left to delete in a VM that is gone
		if err != nil && !isVMLost(err) {
			return fmt.Errorf("deleting %s/%s in the VM: %w", c.id, p.ref.GetExecId(), err)
		}
	}
	if c.kind == kindContainer || p.ref.GetExecId() != "" {
		return nil
	}
	return s.releaseVM(ctx)
}

// Kill signals a process in the VM; killing the sandbox task ends it (the VM goes on Delete).
func (s *Service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*emptypb.Empty, error) {
	c, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if c.kind == kindSandbox {
		exit := signalled(r.Signal)
		if p.setExited(exit) {
			s.publish(exitEvent(r.ID, "", uint32(os.Getpid()), exit))
		}
		return empty, nil
	}
	if _, _, exit := p.snapshot(); exit != nil {
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "process %s/%s already finished", r.ID, r.ExecID)
	}
	_, err = call(ctx, s, repeatable, func(agent *agentclient.Client) (*agentapi.Empty, error) {
		return agent.SignalProcess(ctx, &agentapi.SignalProcessRequest{Process: p.ref, Signal: r.Signal, All: r.All})
	})
	if isVMLost(err) {
		// its watch reports the exit: the process went with its VM
		return nil, errgrpc.ToGRPCf(errdefs.ErrNotFound, "process %s/%s went with its VM: %v", r.ID, r.ExecID, err)
	}
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("signalling %s/%s in the VM: %w", r.ID, r.ExecID, err))
	}
	return empty, nil
}

// Exec registers an extra process in a container of the VM; Start runs it.
func (s *Service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*emptypb.Empty, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	var spec specs.Process
	if err := json.Unmarshal(r.Spec.GetValue(), &spec); err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("the exec's process spec: %w: %w", err, errdefs.ErrInvalidArgument))
	}
	proc, err := agentProcess(&spec, r.Stdin != "")
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument))
	}
	proc.Terminal = r.Terminal
	_, err = call(ctx, s, once, func(agent *agentclient.Client) (*agentapi.Empty, error) {
		return agent.ExecProcess(ctx, &agentapi.ExecProcessRequest{ContainerId: r.ID, ExecId: r.ExecID, Process: proc})
	})
	if err != nil {
		return nil, errgrpc.ToGRPC(fmt.Errorf("exec %s in %s: %w", r.ExecID, r.ID, err))
	}
	s.mu.Lock()
	c.execs[r.ExecID] = newProcess(r.ID, r.ExecID, proc, stdio{stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, terminal: r.Terminal})
	s.mu.Unlock()
	s.publish(&eventstypes.TaskExecAdded{ContainerID: r.ID, ExecID: r.ExecID})
	return empty, nil
}

func (s *Service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*emptypb.Empty, error) {
	_, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	_, err = call(ctx, s, repeatable, func(agent *agentclient.Client) (*agentapi.Empty, error) {
		return agent.ResizeTerminal(ctx, &agentapi.ResizeTerminalRequest{Process: p.ref, Rows: r.Height, Columns: r.Width})
	})
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	return empty, nil
}

// CloseIO ends a process's stdin.
func (s *Service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*emptypb.Empty, error) {
	_, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if r.Stdin {
		p.copy.closeStdin()
	}
	return empty, nil
}

// Wait blocks until the process exits.
func (s *Service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	_, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		return nil, errgrpc.ToGRPC(ctx.Err())
	}
	_, _, exit := p.snapshot()
	return &taskAPI.WaitResponse{ExitStatus: uint32(exit.GetExitCode()), ExitedAt: exitTimestamp(exit)}, nil
}

func (s *Service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	pid, status, exit := p.snapshot()
	return &taskAPI.StateResponse{
		ID: r.ID, ExecID: r.ExecID, Pid: pid, Status: status,
		Stdin: p.io.stdin, Stdout: p.io.stdout, Stderr: p.io.stderr, Terminal: p.io.terminal,
		ExitStatus: uint32(exit.GetExitCode()), ExitedAt: exitTimestamp(exit), Bundle: c.id,
	}, nil
}

// Pids answers the task's processes by their pids in the VM.
func (s *Service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	c, err := s.container(r.ID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*task.ProcessInfo
	for _, p := range append([]*process{c.init}, mapValues(c.execs)...) {
		if pid, status, _ := p.snapshot(); status == task.Status_RUNNING {
			out = append(out, &task.ProcessInfo{Pid: pid})
		}
	}
	return &taskAPI.PidsResponse{Processes: out}, nil
}

func mapValues(m map[string]*process) []*process {
	out := make([]*process, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	return out
}
