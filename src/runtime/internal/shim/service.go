package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/containerd/v2/core/runtime"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"github.com/opencontainers/runtime-spec/specs-go"
	"peerpods.io/runtime/pkg/agentclient"
)

// container is a task: the sandbox (the VM itself) or a container running in the VM.
type container struct {
	id   string
	kind taskKind
	pod  string
	// terminationLog is the node's file kubelet reads the container's termination message from.
	terminationLog string
	init           *process
	execs          map[string]*process
}

// Service is the task service of one sandbox's shim.
type Service struct {
	ctx       context.Context
	publisher shim.Publisher
	shutdown  shutdown.Service

	mu         sync.Mutex
	containers map[string]*container
	vm         *podVM
	link       *agentLink
}

// NewService is the shim's task service; it publishes task events through publisher.
func NewService(ctx context.Context, publisher shim.Publisher, sd shutdown.Service) *Service {
	s := &Service{ctx: ctx, publisher: publisher, shutdown: sd, containers: map[string]*container{}}
	sd.RegisterCallback(func(context.Context) error { return s.closeLink() })
	return s
}

func (s *Service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTTRPCTaskService(server, s)
	return nil
}

func (s *Service) publish(event events.Event) {
	if err := s.publisher.Publish(s.ctx, runtime.GetTopic(event), event); err != nil {
		log.G(s.ctx).WithError(err).Warn("publishing a task event")
	}
}

func (s *Service) container(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, fmt.Errorf("task %s: %w", id, errdefs.ErrNotFound)
	}
	return c, nil
}

// process finds a task's init process (execID "") or one of its execs.
func (s *Service) process(id, execID string) (*container, *process, error) {
	c, err := s.container(id)
	if err != nil {
		return nil, nil, err
	}
	if execID == "" {
		return c, c.init, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := c.execs[execID]
	if !ok {
		return nil, nil, fmt.Errorf("exec %s of task %s: %w", execID, id, errdefs.ErrNotFound)
	}
	return c, p, nil
}

// connected answers the link to the sandbox VM's agent, or an error when the VM is not up yet.
func (s *Service) connected() (*agentLink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.link == nil {
		return nil, fmt.Errorf("the pod's VM is not up (its sandbox task was not created in this shim): %w", errdefs.ErrFailedPrecondition)
	}
	return s.link, nil
}

// call runs one call on the sandbox VM's agent (see onAgent).
func call[T any](ctx context.Context, s *Service, again repeat, do func(*agentclient.Client) (T, error)) (T, error) {
	link, err := s.connected()
	if err != nil {
		var zero T
		return zero, err
	}
	return onAgent(ctx, link, again, do)
}

// bringUpVM gets the sandbox's VM from the hypervisor part and connects to its agent.
func (s *Service) bringUpVM(ctx context.Context, id string, spec *specs.Spec) error {
	annotations, err := vmAnnotations(spec.Annotations)
	if err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	vm := podVM{sandboxID: id, socket: hypervisorSocket()}
	socket, err := startVM(ctx, vm, annotations, netnsPath(spec))
	if err != nil {
		return err
	}
	agent, err := dialAgent(ctx, socket)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vm, s.link = &vm, newAgentLink(vm, socket, agent, s.vmLost)
	go s.link.heartbeat(context.WithoutCancel(ctx))
	return nil
}

// releaseVM closes the agent connection and hands the VM back to the hypervisor part.
func (s *Service) releaseVM(ctx context.Context) error {
	s.mu.Lock()
	vm := s.vm
	s.vm = nil
	s.mu.Unlock()
	if err := s.closeLink(); err != nil {
		log.G(ctx).WithError(err).Warn("closing the agent connection")
	}
	if vm == nil {
		return nil
	}
	return stopVM(ctx, *vm)
}

// closeLink ends the link to the agent for good; the link stays, failing every call.
func (s *Service) closeLink() error {
	s.mu.Lock()
	link := s.link
	s.mu.Unlock()
	if link == nil {
		return nil
	}
	return link.release()
}

func readSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the bundle's OCI spec: %w", err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("the bundle's OCI spec is not valid JSON: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return &spec, nil
}
