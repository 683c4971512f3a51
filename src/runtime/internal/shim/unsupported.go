package shim

import (
	"context"
	"os"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// notInVM refuses what a pod VM's containers cannot do (yet): the VM is the unit of resources.
func notInVM(what string) error {
	return errgrpc.ToGRPCf(errdefs.ErrNotImplemented, "%s of a container in a peer pod's VM", what)
}

func (s *Service) Pause(context.Context, *taskAPI.PauseRequest) (*emptypb.Empty, error) {
	return nil, notInVM("pause")
}

func (s *Service) Resume(context.Context, *taskAPI.ResumeRequest) (*emptypb.Empty, error) {
	return nil, notInVM("resume")
}

func (s *Service) Checkpoint(context.Context, *taskAPI.CheckpointTaskRequest) (*emptypb.Empty, error) {
	return nil, notInVM("checkpoint")
}

func (s *Service) Stats(context.Context, *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	return nil, notInVM("stats")
}

// Update accepts new resources and keeps the VM's: its instance type sizes the pod.
func (s *Service) Update(context.Context, *taskAPI.UpdateTaskRequest) (*emptypb.Empty, error) {
	return empty, nil
}

// Connect answers the shim's pid and the task's pid in the VM.
func (s *Service) Connect(_ context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	_, p, err := s.process(r.ID, "")
	if err != nil {
		return nil, errgrpc.ToGRPC(err)
	}
	pid, _, _ := p.snapshot()
	return &taskAPI.ConnectResponse{ShimPid: uint32(os.Getpid()), TaskPid: pid}, nil
}

// Shutdown ends the shim once it holds no task.
func (s *Service) Shutdown(context.Context, *taskAPI.ShutdownRequest) (*emptypb.Empty, error) {
	s.mu.Lock()
	busy := len(s.containers) > 0
	s.mu.Unlock()
	if !busy {
		s.shutdown.Shutdown()
	}
	return empty, nil
}
