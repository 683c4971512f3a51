package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	runc "github.com/containerd/go-runc"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
)

// hostRuntime stands in for runc: it runs a container's process as a plain process here, so the
// agent's plumbing (trees, stdio, exits, signals, bundles) is tested without namespaces.
type hostRuntime struct {
	mu          sync.Mutex
	inits       map[string]int
	panicOnKill bool
}

func (h *hostRuntime) Create(_ context.Context, id, bundle string, proc *process) (int, error) {
	if proc.socket != nil {
		return 0, invalid("the host runtime has no terminals")
	}
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return 0, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return 0, err
	}
	pid, err := h.run(spec.Process, proc)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inits[id] = pid
	return pid, err
}

func (h *hostRuntime) run(p *specs.Process, proc *process) (int, error) {
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = p.Env
	proc.pipes.Set(cmd)
	if _, err := testReaper.Start(cmd); err != nil {
		return 0, err
	}
	return cmd.Process.Pid, proc.pipes.(runc.StartCloser).CloseAfterStart()
}

func (h *hostRuntime) Start(context.Context, string) error { return nil }

func (h *hostRuntime) Exec(_ context.Context, _, _ string, proc *process) (int, error) {
	return h.run(proc.spec, proc)
}

func (h *hostRuntime) Kill(_ context.Context, id string, signal int, _ bool) error {
	if h.panicOnKill {
		panic("kill went wrong")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return syscall.Kill(h.inits[id], syscall.Signal(signal))
}

func (h *hostRuntime) Delete(ctx context.Context, id string, force bool) error {
	if force {
		_ = h.Kill(ctx, id, int(syscall.SIGKILL), true)
	}
	return nil
}

type fixture struct {
	client  *agentclient.Client
	server  *Server
	socket  string
	runtime *hostRuntime
	status  *bytes.Buffer
}

func startAgent(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{
		BundleDir: filepath.Join(dir, "bundles"), VolumeDir: filepath.Join(dir, "volumes"), RuncRoot: filepath.Join(dir, "runc"), CgroupRoot: dir, CgroupParent: "/cgroups",
		MaxContainers: 3, MaxExecs: 2,
	}
	cfg.Tree = TreeLimits{MaxBytes: 1 << 20, MaxEntries: 100, Room: FolderRoom(dir)}
	for _, d := range []string{cfg.BundleDir, cfg.RuncRoot} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	runtime := &hostRuntime{inits: map[string]int{}}
	var statusLines bytes.Buffer
	f := &fixture{runtime: runtime, status: &statusLines, socket: filepath.Join(dir, "agent.sock")}
	network := &PodNetwork{Path: filepath.Join(dir, "netns", "pod")}
	f.server = &Server{
		Containers: NewContainers(cfg, runtime, testReaper, network), Config: cfg, Network: network, UserDataFile: filepath.Join(dir, "user-data"),
		Workload:   &Workload{Script: filepath.Join(dir, "workload.sh"), Shell: "/bin/sh", Output: func() (*os.File, error) { return os.Create(filepath.Join(dir, "workload.log")) }, Monitor: testReaper, Status: NewStatusPort(&statusLines)},
		InstanceID: "vm-test", AgentVersion: "test", RuncVersion: func() string { return "none" }, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	server, err := ttrpc.NewServer(ttrpc.WithUnaryServerInterceptor(f.server.Intercept))
	if err != nil {
		t.Fatal(err)
	}
	agentapi.RegisterAgentService(server, f.server)
	RegisterKataRefusal(server)
	listener, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve(context.Background(), listener) }()
	t.Cleanup(func() { _ = server.Close() })
	if f.client, err = agentclient.Dial(context.Background(), f.socket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.client.Close() })
	return f
}

func (f *fixture) rootfs(t *testing.T, id string) {
	t.Helper()
	if _, err := f.client.PutTree(context.Background(), id, RootfsTree, bytes.NewReader(tarOf(t, file("etc/motd", "hi\n", 0o644)))); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) create(t *testing.T, id string, args ...string) {
	t.Helper()
	f.rootfs(t, id)
	if _, err := f.client.CreateContainer(context.Background(), &agentapi.CreateContainerRequest{ContainerId: id, Process: &agentapi.Process{Args: args}}); err != nil {
		t.Fatal(err)
	}
}

// running creates and starts a container; it answers the reference to its init process.
func (f *fixture) running(t *testing.T, id string, args ...string) *agentapi.ProcessRef {
	t.Helper()
	f.create(t, id, args...)
	init := &agentapi.ProcessRef{ContainerId: id}
	if _, err := f.client.StartProcess(context.Background(), init); err != nil {
		t.Fatal(err)
	}
	return init
}

func (f *fixture) output(t *testing.T, ref *agentapi.ProcessRef, stream agentapi.OutputStream) string {
	t.Helper()
	var out bytes.Buffer
	if err := f.client.CopyOutput(context.Background(), ref, stream, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func wantCode(t *testing.T, what string, err error, code codes.Code, mentions string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), mentions) {
		t.Errorf("%s: got %v, want %v mentioning %q", what, err, code, mentions)
	}
}

func TestContainerLifecycle(t *testing.T) {
	f := startAgent(t)
	ctx := context.Background()
	f.create(t, "c1", "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
	ref := &agentapi.ProcessRef{ContainerId: "c1"}
	if _, err := f.client.StartProcess(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if out, errOut := f.output(t, ref, agentapi.OutputStream_STDOUT), f.output(t, ref, agentapi.OutputStream_STDERR); out != "out\n" || errOut != "err\n" {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}
	exit, err := f.client.WaitProcess(ctx, ref)
	if err != nil || exit.GetExitCode() != 3 {
		t.Fatalf("exit %v, err %v", exit, err)
	}
	health, _ := f.client.Health(ctx, &agentapi.HealthRequest{})
	if health.GetContainers() != 1 || health.GetLeftovers().GetBundles() != 1 {
		t.Errorf("health before delete: %v", health)
	}
	if _, err := f.client.DeleteContainer(ctx, &agentapi.DeleteContainerRequest{ContainerId: "c1"}); err != nil {
		t.Fatal(err)
	}
	health, _ = f.client.Health(ctx, &agentapi.HealthRequest{})
	if health.GetContainers() != 0 || health.GetLeftovers().GetBundles() != 0 {
		t.Errorf("health after delete: %v", health)
	}
}

func TestExecWithStdinAndSignals(t *testing.T) {
	f := startAgent(t)
	ctx := context.Background()
	init := f.running(t, "c1", "/bin/sleep", "30")
	exec := &agentapi.ProcessRef{ContainerId: "c1", ExecId: "e1"}
	if _, err := f.client.ExecProcess(ctx, &agentapi.ExecProcessRequest{ContainerId: "c1", ExecId: "e1", Process: &agentapi.Process{Args: []string{"/bin/cat"}, Stdin: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.StartProcess(ctx, exec); err != nil {
		t.Fatal(err)
	}
	if err := f.client.CopyStdin(ctx, exec, strings.NewReader("through cat\n")); err != nil {
		t.Fatal(err)
	}
	if out := f.output(t, exec, agentapi.OutputStream_STDOUT); out != "through cat\n" {
		t.Errorf("cat echoed %q", out)
	}
	if exit, err := f.client.WaitProcess(ctx, exec); err != nil || exit.GetExitCode() != 0 {
		t.Errorf("cat: %v %v", exit, err)
	}
	if _, err := f.client.DeleteProcess(ctx, exec); err != nil {
		t.Errorf("deleting the exited exec: %v", err)
	}
	_, err := f.client.DeleteProcess(ctx, exec)
	wantCode(t, "deleting it again", err, codes.NotFound, `no exec "e1"`)
	// MaxExecs is 2: deleted execs make room for new ones.
	for _, id := range []string{"e2", "e3", "e4"} {
		ref := &agentapi.ProcessRef{ContainerId: "c1", ExecId: id}
		if _, err := f.client.ExecProcess(ctx, &agentapi.ExecProcessRequest{ContainerId: "c1", ExecId: id, Process: &agentapi.Process{Args: []string{"/bin/sleep", "30"}}}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.client.StartProcess(ctx, ref); err != nil {
			t.Fatal(err)
		}
		_, err := f.client.DeleteProcess(ctx, ref)
		wantCode(t, "deleting a running exec", err, codes.FailedPrecondition, "still running")
		if _, err := f.client.SignalProcess(ctx, &agentapi.SignalProcessRequest{Process: ref, Signal: 9}); err != nil {
			t.Fatal(err)
		}
		if exit, err := f.client.WaitProcess(ctx, ref); err != nil || exit.GetExitCode() != 128+9 {
			t.Fatalf("killed exec: %v %v", exit, err)
		}
		if _, err := f.client.DeleteProcess(ctx, ref); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.client.DeleteContainer(ctx, &agentapi.DeleteContainerRequest{ContainerId: "c1"})
	wantCode(t, "deleting a running container", err, codes.FailedPrecondition, "delete with force")
	if _, err := f.client.SignalProcess(ctx, &agentapi.SignalProcessRequest{Process: init, Signal: uint32(syscall.SIGTERM)}); err != nil {
		t.Fatal(err)
	}
	if exit, err := f.client.WaitProcess(ctx, init); err != nil || exit.GetExitCode() != 128+15 {
		t.Errorf("after SIGTERM: %v %v", exit, err)
	}
	_, err = f.client.SignalProcess(ctx, &agentapi.SignalProcessRequest{Process: init, Signal: 9})
	wantCode(t, "signalling an exited process", err, codes.FailedPrecondition, "not running")
}

func TestBadRequests(t *testing.T) {
	f := startAgent(t)
	ctx := context.Background()
	_, err := f.client.CreateContainer(ctx, &agentapi.CreateContainerRequest{ContainerId: "none", Process: &agentapi.Process{Args: []string{"sh"}}})
	wantCode(t, "create without a rootfs", err, codes.NotFound, "upload its rootfs first")
	_, err = f.client.PutTree(ctx, "big", RootfsTree, bytes.NewReader(tarOf(t, file("f", strings.Repeat("x", 2<<20), 0o644))))
	wantCode(t, "a tree past the limit", err, codes.ResourceExhausted, "may hold 1048576 bytes")
	_, err = f.client.PutTree(ctx, "../etc", RootfsTree, bytes.NewReader(nil))
	wantCode(t, "a bad container id", err, codes.InvalidArgument, "container id")
	f.rootfs(t, "c1")
	_, err = f.client.CreateContainer(ctx, &agentapi.CreateContainerRequest{ContainerId: "c1", Process: &agentapi.Process{Args: []string{"/bin/true"}}, Mounts: []*agentapi.Mount{{Destination: "/cfg", Tree: "cfg"}}})
	wantCode(t, "a mount of a tree never uploaded", err, codes.InvalidArgument, `tree "cfg"`)
	f.create(t, "c2", "/bin/true")
	_, err = f.client.PutTree(ctx, "c2", "late", bytes.NewReader(tarOf(t, dir("x"))))
	wantCode(t, "a tree after create", err, codes.FailedPrecondition, "created already")
	_, err = f.client.PutTree(ctx, "c4", RootfsTree, bytes.NewReader(tarOf(t, dir("x"))))
	wantCode(t, "a container past the limit", err, codes.ResourceExhausted, "limit of 3 containers")
	_, err = f.client.ExecProcess(ctx, &agentapi.ExecProcessRequest{ContainerId: "nope", ExecId: "e", Process: &agentapi.Process{Args: []string{"sh"}}})
	wantCode(t, "exec in an unknown container", err, codes.NotFound, `no container "nope"`)
	_, err = f.client.ReadOutput(ctx, &agentapi.ReadOutputRequest{Process: &agentapi.ProcessRef{ContainerId: "c2"}, Stream: 7})
	wantCode(t, "an unknown output stream", err, codes.InvalidArgument, "stream 7")
	health, _ := f.client.Health(ctx, &agentapi.HealthRequest{})
	if health.GetFailedCalls()["WriteTree"] != 4 || health.GetFailedCalls()["CreateContainer"] != 2 {
		t.Errorf("failed calls counted: %v", health.GetFailedCalls())
	}
	if _, err := f.client.DeleteContainer(ctx, &agentapi.DeleteContainerRequest{ContainerId: "big"}); err != nil {
		t.Errorf("a container whose tree failed is deleted like any: %v", err)
	}
}

func TestProtocolVersion(t *testing.T) {
	f := startAgent(t)
	conn, err := net.Dial("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	raw := agentapi.NewAgentClient(ttrpc.NewClient(conn))
	ctx := context.Background()
	if _, err := raw.Version(ctx, &agentapi.VersionRequest{}); err != nil {
		t.Errorf("Version answers a client of any version: %v", err)
	}
	_, err = raw.Health(ctx, &agentapi.HealthRequest{})
	wantCode(t, "a call without a version", err, codes.FailedPrecondition, "carries no agent protocol version")
	md := ttrpc.MD{}
	md.Set(agentapi.ProtocolMetadataKey, "2")
	_, err = raw.Health(ttrpc.WithMetadata(ctx, md), &agentapi.HealthRequest{})
	wantCode(t, "a call of another version", err, codes.FailedPrecondition, `version "2", this agent speaks version 1`)
}

// A request whose payload is not the method's message gets an error, and the agent goes on serving.
func TestMalformedRequest(t *testing.T) {
	f := startAgent(t)
	conn, err := net.Dial("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	request, _ := proto.Marshal(&ttrpc.Request{
		Service: agentapi.ServiceName, Method: "CreateContainer", Payload: []byte{0xff, 0xff, 0xff},
		Metadata: []*ttrpc.KeyValue{{Key: agentapi.ProtocolMetadataKey, Value: "1"}},
	})
	header := make([]byte, 10)
	binary.BigEndian.PutUint32(header, uint32(len(request)))
	binary.BigEndian.PutUint32(header[4:], 1)
	header[8] = 1 // request
	if _, err := conn.Write(append(header, request...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(conn, header); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(header))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	var response ttrpc.Response
	if err := proto.Unmarshal(body, &response); err != nil {
		t.Fatal(err)
	}
	if response.GetStatus().GetCode() == int32(codes.OK) {
		t.Fatalf("a malformed request was answered OK")
	}
	if _, err := f.client.Health(context.Background(), &agentapi.HealthRequest{}); err != nil {
		t.Errorf("the agent stopped serving: %v", err)
	}
}

func TestPanicBecomesAnError(t *testing.T) {
	f := startAgent(t)
	ctx := context.Background()
	init := f.running(t, "c1", "/bin/sleep", "30")
	f.runtime.panicOnKill = true
	_, err := f.client.SignalProcess(ctx, &agentapi.SignalProcessRequest{Process: init, Signal: 15})
	wantCode(t, "a call that panics", err, codes.Internal, "kill went wrong")
	f.runtime.panicOnKill = false
	if _, err := f.client.DeleteContainer(ctx, &agentapi.DeleteContainerRequest{ContainerId: "c1", Force: true}); err != nil {
		t.Errorf("the agent goes on after a panic: %v", err)
	}
}

func TestWorkloadRunsOnce(t *testing.T) {
	f := startAgent(t)
	ctx := context.Background()
	if _, err := f.client.StartWorkload(ctx, &agentapi.StartWorkloadRequest{Script: "echo hi; exit 4"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.StartWorkload(ctx, &agentapi.StartWorkloadRequest{Script: "true"})
	wantCode(t, "a second workload", err, codes.AlreadyExists, "already started")
	deadline := time.Now().Add(5 * time.Second)
	for f.server.Workload.State() != "exited 4" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if state := f.server.Workload.State(); state != "exited 4" {
		t.Fatalf("workload %q", state)
	}
	if !strings.Contains(f.status.String(), "workload exited code=4\n") {
		t.Errorf("status lines %q", f.status.String())
	}
}

// A folder shipped with the client's TarDir arrives as it was: files, modes, folders, symlinks.
func TestTarDirArrivesWhole(t *testing.T) {
	f := startAgent(t)
	src := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "bin"), 0o755))
	must(os.WriteFile(filepath.Join(src, "bin", "tool"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Symlink("tool", filepath.Join(src, "bin", "alias")))
	resp, err := f.client.PutTree(context.Background(), "c1", RootfsTree, agentclient.TarDir(src))
	if err != nil || resp.GetEntries() != 3 {
		t.Fatalf("%v %v", resp, err)
	}
	rootfs := filepath.Join(f.server.Config.BundleDir, "c1", RootfsTree)
	if info, err := os.Stat(filepath.Join(rootfs, "bin", "tool")); err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("tool: %v %v", info, err)
	}
	if link, _ := os.Readlink(filepath.Join(rootfs, "bin", "alias")); link != "tool" {
		t.Errorf("alias -> %q", link)
	}
}

func TestPodOfUserData(t *testing.T) {
	for userData, want := range map[string]string{
		`{"cluster":"c","namespace":"demo","pod":"hello","podUID":"u"}`: "demo/hello",
		`{}`:        "",
		`not json`:  "",
		`{"pod":7}`: "",
	} {
		if got := podOf([]byte(userData)); got != want {
			t.Errorf("podOf(%s) = %q, want %q", userData, got, want)
		}
	}
}

// The Kata shim's first call, kata-agent's health check, learns at once why this agent cannot serve it.
func TestKataShimIsToldThisIsNotKataAgent(t *testing.T) {
	f := startAgent(t)
	conn, err := net.Dial("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	err = client.Call(context.Background(), KataHealthService, "Check", &agentapi.Empty{}, &agentapi.Empty{})
	wantCode(t, "kata-agent's health check", err, codes.FailedPrecondition, "not kata-agent")
}
