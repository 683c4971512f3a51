package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"peerpods.io/runtime/pkg/agentapi"
)

// Server answers agent.proto's calls.
type Server struct {
	Containers   *Containers
	Config       Config
	Network      *PodNetwork
	Workload     *Workload
	UserDataFile string
	InstanceID   string
	AgentVersion string
	// RuncVersion is `runc --version`'s first line, asked once.
	RuncVersion func() string
	Log         *slog.Logger

	mu     sync.Mutex
	failed map[string]uint64
	// pod is the namespace/name the user data names, for log lines.
	pod atomic.Value
}

var _ agentapi.AgentService = (*Server)(nil)

// Intercept runs every call: it refuses a protocol version the agent does not speak, turns a
// panic into an error, and logs and counts failures.
func (s *Server) Intercept(ctx context.Context, unmarshal ttrpc.Unmarshaler, info *ttrpc.UnaryServerInfo, method ttrpc.Method) (resp any, err error) {
	name := path.Base(info.FullMethod)
	defer func() {
		if p := recover(); p != nil {
			s.Log.Error("call panicked", "pod", s.Pod(), "method", name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "the agent failed on %s: %v", name, p)
		}
		if err != nil {
			s.countFailure(name)
			s.Log.Warn("call failed", "pod", s.Pod(), "method", name, "code", status.Code(err).String(), "error", status.Convert(err).Message())
		}
	}()
	if strings.HasPrefix(info.FullMethod, "/"+agentapi.ServiceName+"/") && name != "Version" {
		if err := checkProtocol(ctx); err != nil {
			return nil, err
		}
	}
	return method(ctx, unmarshal)
}

// checkProtocol refuses a call that carries no protocol version or one this agent does not speak.
func checkProtocol(ctx context.Context) error {
	value, ok := ttrpc.GetMetadataValue(ctx, agentapi.ProtocolMetadataKey)
	if !ok {
		return status.Errorf(codes.FailedPrecondition, "the call carries no agent protocol version (ttrpc metadata %q); this agent speaks version %d",
			agentapi.ProtocolMetadataKey, agentapi.ProtocolVersion)
	}
	if version, err := strconv.ParseUint(value, 10, 32); err != nil || uint32(version) != agentapi.ProtocolVersion {
		return status.Errorf(codes.FailedPrecondition, "the client speaks agent protocol version %q, this agent speaks version %d: the node's peerpods and the pod VM image do not match",
			value, agentapi.ProtocolVersion)
	}
	return nil
}

// NotePod remembers which pod the user data names (its "namespace" and "pod"), for log lines.
func (s *Server) NotePod(userData []byte) {
	s.pod.Store(podOf(userData))
}

// Pod is "namespace/name" of the VM's pod, or "" before user data names one.
func (s *Server) Pod() string {
	pod, _ := s.pod.Load().(string)
	return pod
}

// podOf is "namespace/name" from the worker's user data, or "" when it names no pod.
func podOf(userData []byte) string {
	var names struct {
		Namespace string `json:"namespace"`
		Pod       string `json:"pod"`
	}
	if json.Unmarshal(userData, &names) != nil || names.Pod == "" {
		return ""
	}
	return names.Namespace + "/" + names.Pod
}

// KataHealthService is kata-agent's health service, the Kata shim's first call on an agent socket.
const KataHealthService = "grpc.Health"

// RegisterKataRefusal answers the Kata shim's health check with why it cannot work here: this VM
// runs peerpods-agent, not kata-agent. Without it the shim would get a bare "service not implemented".
func RegisterKataRefusal(server *ttrpc.Server) {
	refuse := func(context.Context, func(any) error) (any, error) {
		return nil, status.Errorf(codes.FailedPrecondition,
			"this pod VM runs peerpods-agent (%s, protocol version %d), not kata-agent: its image serves RuntimeClass peerpods; a kata-remote pod needs a pod VM image with kata-agent",
			agentapi.ServiceName, agentapi.ProtocolVersion)
	}
	server.Register(KataHealthService, map[string]ttrpc.Method{"Check": refuse, "Version": refuse})
}

func (s *Server) countFailure(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = map[string]uint64{}
	}
	s.failed[method]++
}

func (s *Server) failures() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64, len(s.failed))
	for method, n := range s.failed {
		out[method] = n
	}
	return out
}

func (s *Server) Version(context.Context, *agentapi.VersionRequest) (*agentapi.VersionResponse, error) {
	return &agentapi.VersionResponse{
		AgentVersion:     s.AgentVersion,
		ProtocolVersions: []uint32{agentapi.ProtocolVersion},
		KernelRelease:    KernelRelease(),
		Vcpus:            vcpus(),
		RuncVersion:      s.RuncVersion(),
	}, nil
}

func (s *Server) Health(context.Context, *agentapi.HealthRequest) (*agentapi.HealthResponse, error) {
	return &agentapi.HealthResponse{
		Ready:       true,
		UptimeMs:    UptimeMs(),
		InstanceId:  s.InstanceID,
		Workload:    s.Workload.State(),
		Containers:  uint32(s.Containers.Count()),
		Leftovers:   leftovers(s.Config),
		FailedCalls: s.failures(),
	}, nil
}

func (s *Server) SetUserData(_ context.Context, req *agentapi.SetUserDataRequest) (*agentapi.Empty, error) {
	temp := s.UserDataFile + ".new"
	if err := os.WriteFile(temp, req.GetData(), 0o600); err != nil {
		return nil, internal(err, "writing the user data")
	}
	if err := os.Rename(temp, s.UserDataFile); err != nil {
		return nil, internal(err, "replacing the user data")
	}
	s.NotePod(req.GetData())
	return &agentapi.Empty{}, nil
}

func (s *Server) StartWorkload(_ context.Context, req *agentapi.StartWorkloadRequest) (*agentapi.Empty, error) {
	return &agentapi.Empty{}, s.Workload.Start(req.GetScript())
}

func (s *Server) SetupNetwork(_ context.Context, req *agentapi.SetupNetworkRequest) (*agentapi.Empty, error) {
	network, err := s.Network.Setup(req)
	if err != nil {
		return nil, err
	}
	s.Log.Info("pod network set up", "pod", s.Pod(), "netns", s.Network.Path, "interface", network.Interface, "mac", network.MAC, "mtu", network.MTU,
		"addresses", network.Addresses, "routes", network.Routes, "vni", network.VNI, "port", network.Port, "nodeIp", network.NodeIP)
	return &agentapi.Empty{}, nil
}

func (s *Server) WriteTree(_ context.Context, req *agentapi.WriteTreeRequest) (*agentapi.WriteTreeResponse, error) {
	return s.Containers.WriteTree(req)
}

func (s *Server) CreateContainer(ctx context.Context, req *agentapi.CreateContainerRequest) (*agentapi.Empty, error) {
	return &agentapi.Empty{}, s.Containers.Create(ctx, req)
}

func (s *Server) ExecProcess(_ context.Context, req *agentapi.ExecProcessRequest) (*agentapi.Empty, error) {
	return &agentapi.Empty{}, s.Containers.Exec(req)
}

func (s *Server) StartProcess(ctx context.Context, ref *agentapi.ProcessRef) (*agentapi.StartProcessResponse, error) {
	return s.Containers.Start(ctx, ref)
}

func (s *Server) ReadOutput(ctx context.Context, req *agentapi.ReadOutputRequest) (*agentapi.ReadOutputResponse, error) {
	return s.Containers.ReadOutput(ctx, req)
}

func (s *Server) WriteStdin(ctx context.Context, req *agentapi.WriteStdinRequest) (*agentapi.WriteStdinResponse, error) {
	_, proc, err := s.Containers.process(req.GetProcess())
	if err != nil {
		return nil, err
	}
	n, err := proc.writeStdin(ctx, req.GetData())
	if err != nil {
		return nil, err
	}
	return &agentapi.WriteStdinResponse{Written: uint32(n)}, nil
}

func (s *Server) CloseStdin(_ context.Context, ref *agentapi.ProcessRef) (*agentapi.Empty, error) {
	_, proc, err := s.Containers.process(ref)
	if err != nil {
		return nil, err
	}
	proc.closeStdin()
	return &agentapi.Empty{}, nil
}

func (s *Server) ResizeTerminal(_ context.Context, req *agentapi.ResizeTerminalRequest) (*agentapi.Empty, error) {
	if err := validateSize(req.GetRows(), req.GetColumns()); err != nil {
		return nil, err
	}
	_, proc, err := s.Containers.process(req.GetProcess())
	if err != nil {
		return nil, err
	}
	return &agentapi.Empty{}, proc.resize(req.GetRows(), req.GetColumns())
}

func (s *Server) SignalProcess(ctx context.Context, req *agentapi.SignalProcessRequest) (*agentapi.Empty, error) {
	return &agentapi.Empty{}, s.Containers.Signal(ctx, req)
}

func (s *Server) WaitProcess(ctx context.Context, ref *agentapi.ProcessRef) (*agentapi.WaitProcessResponse, error) {
	_, proc, err := s.Containers.process(ref)
	if err != nil {
		return nil, err
	}
	return proc.wait(ctx)
}

func (s *Server) DeleteProcess(_ context.Context, ref *agentapi.ProcessRef) (*agentapi.Empty, error) {
	return &agentapi.Empty{}, s.Containers.DeleteProcess(ref)
}

func (s *Server) DeleteContainer(ctx context.Context, req *agentapi.DeleteContainerRequest) (*agentapi.Empty, error) {
	return &agentapi.Empty{}, s.Containers.Delete(ctx, req)
}
