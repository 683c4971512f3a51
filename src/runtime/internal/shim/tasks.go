package shim

import (
	"context"
	"errors"
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
	c := &container{id: r.ID, kind: kind, pod: podLabel(spec.Annotations, r.ID), terminationLog: terminationLogFile(spec.Mounts), execs: map[string]*process{}}
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
	proc, err := agentProcess(spec.Process, r.Stdin != "")
	if err != nil {
		return nil, err
	}
	proc.Terminal = r.Terminal
	readonly := spec.Root != nil && spec.Root.Readonly
	_, err = call(ctx, s, once, func(agent *agentclient.Client) (struct{}, error) {
		if err := shipRootfs(ctx, agent, r.ID, r.Rootfs); err != nil {
			return struct{}{}, err
		}
		mounts, err := shipVolumes(ctx, agent, r.ID, volumes(spec.Mounts, isDir))
		if err != nil {
			return struct{}{}, err
		}
		if _, err := agent.CreateContainer(ctx, &agentapi.CreateContainerRequest{ContainerId: r.ID, Process: proc, Mounts: mounts, ReadonlyRootfs: readonly}); err != nil {
			return struct{}{}, fmt.Errorf("creating container %s in the VM: %w", r.ID, err)
		}
		return struct{}{}, nil
	})
	if err != nil {
		return nil, err
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
	link, err := s.connected()
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	logger := log.G(ctx).WithField("pod", c.pod).WithField("task", r.ID).WithField("exec", r.ExecID)
	report := func(err error) { logger.WithError(err).Warn("stdio") }
	if p.copy, err = startCopy(ctx, link, p.ref, p.io, report); err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	started, err := onAgent(ctx, link, once, func(agent *agentclient.Client) (*agentapi.StartProcessResponse, error) {
		return agent.StartProcess(ctx, p.ref)
	})
	if err != nil {
		p.copy.closeNow()
		return nil, errgrpc.ToGRPC(fmt.Errorf("starting %s/%s in the VM: %w", r.ID, r.ExecID, err))
	}
	p.started(started.GetPid())
	p.copy.copyStdin(ctx, link, p.ref, report)
	// published before the watch starts, so that containerd never sees an exit before its start
	if r.ExecID == "" {
		s.publish(&eventstypes.TaskStart{ContainerID: r.ID, Pid: started.GetPid()})
	} else {
		s.publish(&eventstypes.TaskExecStarted{ContainerID: r.ID, ExecID: r.ExecID, Pid: started.GetPid()})
	}
	go s.watch(link, c, p, logger)
	return &taskAPI.StartResponse{Pid: started.GetPid()}, nil
}

// watch waits for a process to exit in the VM, lets its output drain, then publishes its exit. A
// process whose VM is lost exited with SIGKILL; its container's termination message says why.
func (s *Service) watch(link *agentLink, c *container, p *process, logger *log.Entry) {
	ctx := context.WithoutCancel(s.ctx)
	exit, err := onAgent(ctx, link, repeatable, func(agent *agentclient.Client) (*agentapi.WaitProcessResponse, error) {
		return agent.WaitProcess(ctx, p.ref)
	})
	if err != nil {
		logger.WithError(err).Error("lost the process in the VM; reporting it exited")
		exit = signalled(9)
		var lost *vmLostError
		if errors.As(err, &lost) && lost != errReleased && p.ref.GetExecId() == "" {
			if err := writeTerminationMessage(c.terminationLog, lost.reason); err != nil {
				logger.WithError(err).Warn("writing the termination message")
			}
		}
	}
	p.copy.wait()
	if p.setExited(exit) {
		pid, _, _ := p.snapshot()
		logger.WithField("exit", exit.GetExitCode()).Info("process exited")
		s.publish(exitEvent(p.ref.GetContainerId(), p.ref.GetExecId(), pid, exit))
	}
}

// vmLost ends the sandbox task once its VM is gone, so that kubelet sees the pod's sandbox die and
// acts on the pod's restart policy; the containers' watches report their own exits.
func (s *Service) vmLost(error) {
	s.mu.Lock()
	var sandboxes []*container
	for _, c := range s.containers {
		if c.kind == kindSandbox {
			sandboxes = append(sandboxes, c)
		}
	}
	s.mu.Unlock()
	for _, c := range sandboxes {
		exit := signalled(9)
		if c.init.setExited(exit) {
			s.publish(exitEvent(c.id, "", uint32(os.Getpid()), exit))
		}
	}
}
