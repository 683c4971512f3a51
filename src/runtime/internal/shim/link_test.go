package shim

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
	"peerpods.io/runtime/pkg/hypervisorapi"
)

// versionAgent answers Version only: enough for the link's handshake and for a call to go through.
type versionAgent struct{ agentapi.AgentService }

func (versionAgent) Version(context.Context, *agentapi.VersionRequest) (*agentapi.VersionResponse, error) {
	return &agentapi.VersionResponse{ProtocolVersions: []uint32{agentapi.ProtocolVersion}}, nil
}

// hypervisorAnswer is what the stand-in hypervisor part's StartVM answers.
type hypervisorAnswer struct {
	hypervisorapi.HypervisorService
	mu     sync.Mutex
	err    error
	starts int
}

func (h *hypervisorAnswer) StartVM(context.Context, *hypervisorapi.StartVMRequest) (*hypervisorapi.StartVMResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starts++
	return &hypervisorapi.StartVMResponse{}, h.err
}

func (h *hypervisorAnswer) answer(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
}

func serveTTRPC(t *testing.T, path string, register func(*ttrpc.Server)) *ttrpc.Server {
	server, err := ttrpc.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	register(server)
	listener, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve(context.Background(), listener) }()
	t.Cleanup(func() { _ = server.Close() })
	return server
}

func serveAgent(t *testing.T, path string) *ttrpc.Server {
	return serveTTRPC(t, path, func(s *ttrpc.Server) { agentapi.RegisterAgentService(s, versionAgent{}) })
}

// linkFixture is a link to an agent through a socket, with the hypervisor part beside it.
type linkFixture struct {
	link       *agentLink
	agent      *ttrpc.Server
	agentPath  string
	hypervisor *hypervisorAnswer
	lost       atomic.Int32
	reason     atomic.Value
}

func newLinkFixture(t *testing.T) *linkFixture {
	return newLinkFixtureWith(t, versionAgent{})
}

func newLinkFixtureWith(t *testing.T, agent agentapi.AgentService) *linkFixture {
	dir := t.TempDir()
	f := &linkFixture{agentPath: filepath.Join(dir, "agent.sock"), hypervisor: &hypervisorAnswer{}}
	hypervisorPath := filepath.Join(dir, "hypervisor.sock")
	serveTTRPC(t, hypervisorPath, func(s *ttrpc.Server) { hypervisorapi.RegisterHypervisorService(s, f.hypervisor) })
	f.agent = serveTTRPC(t, f.agentPath, func(s *ttrpc.Server) { agentapi.RegisterAgentService(s, agent) })
	client, err := agentclient.Dial(context.Background(), f.agentPath)
	if err != nil {
		t.Fatal(err)
	}
	f.link = newAgentLink(podVM{sandboxID: "sandbox-1", socket: hypervisorPath}, f.agentPath, client, func(reason error) {
		f.lost.Add(1)
		f.reason.Store(reason.Error())
	})
	t.Cleanup(func() { _ = f.link.release() })
	return f
}

// dropAgent stops the agent's server and waits until the link's connection has seen it go.
func (f *linkFixture) dropAgent(t *testing.T) {
	_ = f.agent.Close()
	client, err := f.link.current()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := client.Version(context.Background(), &agentapi.VersionRequest{})
		if errors.Is(err, ttrpc.ErrClosed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection still answers after its server closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := os.Remove(f.agentPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

func (f *linkFixture) version() error {
	_, err := onAgent(context.Background(), f.link, repeatable, func(agent *agentclient.Client) (*agentapi.VersionResponse, error) {
		return agent.Version(context.Background(), &agentapi.VersionRequest{})
	})
	return err
}

func shortWindows(t *testing.T, window time.Duration) {
	savedWindow, savedPause := silentWindow, recoverPause
	silentWindow, recoverPause = window, 10*time.Millisecond
	t.Cleanup(func() { silentWindow, recoverPause = savedWindow, savedPause })
}

func TestLinkReconnectsWhenTheForwardedSocketComesBack(t *testing.T) {
	shortWindows(t, 5*time.Second)
	f := newLinkFixture(t)
	f.dropAgent(t) // the hypervisor part went away, and its forwarder with it
	go func() {
		time.Sleep(200 * time.Millisecond)
		serveAgent(t, f.agentPath) // ... and reopened the sandbox's socket
	}()
	if err := f.version(); err != nil {
		t.Fatalf("a repeatable call across the restart failed: %v", err)
	}
	if f.lost.Load() != 0 {
		t.Fatalf("the VM was called lost: %v", f.reason.Load())
	}
	f.hypervisor.mu.Lock()
	defer f.hypervisor.mu.Unlock()
	if f.hypervisor.starts == 0 {
		t.Fatal("the link reconnected without asking the hypervisor part about the VM")
	}
}

// droppedLink is a link whose agent connection just dropped, the hypervisor part answering StartVM with answer.
func droppedLink(t *testing.T, window time.Duration, answer error) *linkFixture {
	shortWindows(t, window)
	f := newLinkFixture(t)
	f.hypervisor.answer(answer)
	f.dropAgent(t)
	return f
}

func TestLinkCallsTheVMLostWithTheHypervisorPartsReason(t *testing.T) {
	f := droppedLink(t, 5*time.Second, status.Error(codes.FailedPrecondition, "VM vm-1 of pod ns/web is terminated: qemu exited: killed by signal 9"))
	err := f.version()
	if !isVMLost(err) || !strings.Contains(err.Error(), "killed by signal 9") {
		t.Fatalf("call failed with %v, want the VM's loss and why", err)
	}
	if again := f.version(); !isVMLost(again) {
		t.Fatalf("a later call failed with %v, want the VM's loss", again)
	}
	if f.lost.Load() != 1 || !strings.Contains(f.reason.Load().(string), "terminated") {
		t.Fatalf("onLost called %d times with %v", f.lost.Load(), f.reason.Load())
	}
}

func TestLinkGivesUpWhenNothingAnswersForTheWindow(t *testing.T) {
	f := droppedLink(t, 300*time.Millisecond, status.Error(codes.Unavailable, "restarting"))
	started := time.Now()
	if err := f.version(); !isVMLost(err) || !strings.Contains(err.Error(), "has not answered") {
		t.Fatalf("call failed with %v", err)
	}
	if took := time.Since(started); took < 300*time.Millisecond {
		t.Fatalf("gave up after %s, before the window", took)
	}
}

func TestLinkDoesNotRepeatACallThatMayHaveHappened(t *testing.T) {
	shortWindows(t, 5*time.Second)
	f := newLinkFixture(t)
	f.dropAgent(t)
	serveAgentLater := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		serveAgent(t, f.agentPath)
		close(serveAgentLater)
	}()
	calls := 0
	_, err := onAgent(context.Background(), f.link, once, func(agent *agentclient.Client) (*agentapi.VersionResponse, error) {
		calls++
		return agent.Version(context.Background(), &agentapi.VersionRequest{})
	})
	<-serveAgentLater
	if calls != 1 || !errors.Is(err, ttrpc.ErrClosed) {
		t.Fatalf("%d calls, error %v: want one call failing with the drop", calls, err)
	}
	if err := f.version(); err != nil {
		t.Fatalf("the next call failed: %v", err)
	}
}

func TestReleasedLinkFailsCallsWithoutCallingTheVMLost(t *testing.T) {
	f := newLinkFixture(t)
	_ = f.link.release()
	if err := f.version(); err != errReleased {
		t.Fatalf("call on a released link: %v", err)
	}
	if f.lost.Load() != 0 {
		t.Fatal("a released link called the VM lost")
	}
}

// silentAgent answers Version, and Health only once told to: until then it is a VM that died where
// no FIN or RST reaches the node (a routed network), its connection open and mute.
type silentAgent struct {
	versionAgent
	answering *atomic.Bool
}

func (a silentAgent) Health(ctx context.Context, _ *agentapi.HealthRequest) (*agentapi.HealthResponse, error) {
	if a.answering.Load() {
		return &agentapi.HealthResponse{Ready: true}, nil
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestLinkHeartbeatFindsAVMThatWentMute(t *testing.T) {
	shortWindows(t, 5*time.Second)
	savedEvery, savedTimeout := heartbeatEvery, heartbeatTimeout
	heartbeatEvery, heartbeatTimeout = 20*time.Millisecond, 50*time.Millisecond
	t.Cleanup(func() { heartbeatEvery, heartbeatTimeout = savedEvery, savedTimeout })
	answering := &atomic.Bool{}
	answering.Store(true)
	f := newLinkFixtureWith(t, silentAgent{answering: answering})
	f.hypervisor.answer(status.Error(codes.FailedPrecondition, "VM vm-1 of pod shop/web is terminated: qemu exited"))
	go f.link.heartbeat(context.Background())
	time.Sleep(200 * time.Millisecond)
	if f.lost.Load() != 0 {
		t.Fatalf("a VM that answers its heartbeats was called lost: %v", f.reason.Load())
	}
	answering.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for f.lost.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a mute VM was never found lost")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if reason, _ := f.reason.Load().(string); !strings.Contains(reason, "qemu exited") {
		t.Fatalf("lost for %q, want the hypervisor part's reason", reason)
	}
}
