package shim

import (
	"context"
	"fmt"
	"os"

	eventstypes "github.com/containerd/containerd/api/events"
	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/log"
	"github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/types/known/emptypb"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
)

var empty = &emptypb.Empty{}

// Create makes the sandbox task (the pod's VM) or a container in the VM, its rootfs shipped there.
func (s *Service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (_ *taskAPI.CreateTaskResponse, err error) {
	spec, err := readSpec(r.Bundle)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	kind := kindOf(spec.Annotations)
	c := &container{id: r.ID, kind: kind, pod: podLabel(spec.Annotations, r.ID), execs: map[string]*process{}}
	logger := log.G(ctx).WithField("pod", c.pod).WithField("task", r.ID)
	if kind != kindContainer {
		if err := s.bringUpVM(ctx, r.ID, spec); err != nil {
			logger.WithError(err).Error("getting the pod's VM")
			return nil, errgrpc.ToGRPC(err)
		}
	}
	pid := uint32(0)
	if kind == kindSandbox {
		c.init = newProcess(r.ID, "", nil, stdio{})
		pid = uint32(os.Getpid())
	} else if c.init, err = s.createInVM(ctx, r, spec); err != nil {
		logger.WithError(err).Error("creating the container in the pod's VM")
		if kind == kindStandalone {
			_ = s.releaseVM(ctx)
		}
		return nil, errgrpc.ToGRPC(err)
	}
	s.mu.Lock()
	s.containers[r.ID] = c
	s.mu.Unlock()
	logger.Info("task created")
	s.publish(&eventstypes.TaskCreate{ContainerID: r.ID, Bundle: r.Bundle, Rootfs: r.Rootfs, IO: &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal}, Pid: pid})
	return &taskAPI.CreateTaskResponse{Pid: pid}, nil
}

func (s *Service) createInVM(ctx context.Context, r *taskAPI.CreateTaskRequest, spec *specs.Spec) (*process, error) {
	agent, err := s.connected()
	if err != nil {
		return nil, err
	}
	proc, err := agentProcess(spec.Process, r.Stdin != "")
	if err != nil {
		return nil, err
	}
	proc.Terminal = r.Terminal
	if err := shipRootfs(ctx, agent, r.ID, r.Rootfs); err != nil {
		return nil, err
	}
	mounts, err := shipVolumes(ctx, agent, r.ID, volumes(spec.Mounts, isDir))
	if err != nil {
		return nil, err
	}
	readonly := spec.Root != nil && spec.Root.Readonly
	if _, err := agent.CreateContainer(ctx, &agentapi.CreateContainerRequest{ContainerId: r.ID, Process: proc, Mounts: mounts, ReadonlyRootfs: readonly}); err != nil {
		return nil, fmt.Errorf("creating container %s in the VM: %w", r.ID, err)
	}
	return newProcess(r.ID, "", proc, stdio{stdin: r.Stdin, stdout: r.Stdout, stderr: r.Stderr, terminal: r.Terminal}), nil
}

// Start runs a task's init process or an exec in the VM; the sandbox task is running once its VM is.
func (s *Service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, p, err := s.process(r.ID, r.ExecID)
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	if c.kind == kindSandbox {
		p.started(uint32(os.Getpid()))
		s.publish(&eventstypes.TaskStart{ContainerID: r.ID, Pid: uint32(os.Getpid())})
		return &taskAPI.StartResponse{Pid: uint32(os.Getpid())}, nil
	}
	agent, err := s.connected()
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	logger := log.G(ctx).WithField("pod", c.pod).WithField("task", r.ID).WithField("exec", r.ExecID)
	report := func(err error) { logger.WithError(err).Warn("stdio") }
	if p.copy, err = startCopy(ctx, agent, p.ref, p.io, report); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	started, err := agent.StartProcess(ctx, p.ref)
	if err != nil {
		p.copy.closeNow()
		return nil, errgrpc.ToGRPC(fmt.Errorf("starting %s/%s in the VM: %w", r.ID, r.ExecID, err))
	}
	p.started(started.GetPid())
	p.copy.copyStdin(ctx, agent, p.ref, report)
	// published before the watch starts, so that containerd never sees an exit before its start
	if r.ExecID == "" {
		s.publish(&eventstypes.TaskStart{ContainerID: r.ID, Pid: started.GetPid()})
	} else {
		s.publish(&eventstypes.TaskExecStarted{ContainerID: r.ID, ExecID: r.ExecID, Pid: started.GetPid()})
	}
	go s.watch(agent, p, logger)
	return &taskAPI.StartResponse{Pid: started.GetPid()}, nil
}

// watch waits for a process to exit in the VM, lets its output drain, then publishes its exit.
func (s *Service) watch(agent *agentclient.Client, p *process, logger *log.Entry) {
	exit, err := agent.WaitProcess(context.WithoutCancel(s.ctx), p.ref)
	if err != nil {
		logger.WithError(err).Error("lost the process in the VM; reporting it exited")
		exit = signalled(9)
	}
	p.copy.wait()
	if p.setExited(exit) {
		pid, _, _ := p.snapshot()
		logger.WithField("exit", exit.GetExitCode()).Info("process exited")
		s.publish(exitEvent(p.ref.GetContainerId(), p.ref.GetExecId(), pid, exit))
	}
}
