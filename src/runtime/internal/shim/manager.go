package shim

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/log"
)

// RuntimeName is the runtime type containerd is configured with (runtime_type).
const RuntimeName = "io.containerd.peerpods.v2"

// Manager starts one shim per pod sandbox and cleans up after a shim that died.
type Manager struct {
	Version string
}

func (Manager) Name() string { return RuntimeName }

// shimGroup is the id a task's shim is keyed by: its sandbox's id, so a pod's containers share
// the shim that holds the pod's VM; a task of its own is its own group.
func shimGroup(id string, annotations map[string]string) string {
	if sandbox := annotations[annotationSandboxID]; sandbox != "" && kindOf(annotations) == kindContainer {
		return sandbox
	}
	return id
}

// Start answers the socket of the task's sandbox shim, starting that shim when it does not run yet.
func (Manager) Start(ctx context.Context, params *bootapi.BootstrapParams) (_ *bootapi.BootstrapResult, retErr error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	spec, err := readSpec(cwd)
	if err != nil {
		return nil, err
	}
	socketDir := params.GetSocketDir()
	if socketDir == "" {
		socketDir = filepath.Join(defaults.DefaultStateDir, "s")
	}
	result := &bootapi.BootstrapResult{Version: 3, Protocol: "ttrpc"}
	address, err := shim.CreateSocketAddress(ctx, socketDir, params.GetContainerdGrpcAddress(), shimGroup(params.GetInstanceID(), spec.Annotations), false)
	if err != nil {
		return nil, err
	}
	result.Address = address
	listener, err := shim.NewSocket(address)
	if err != nil {
		if shim.SocketEaddrinuse(err) && shim.CanConnect(address) {
			return result, nil
		}
		if !shim.SocketEaddrinuse(err) {
			return nil, fmt.Errorf("creating the shim socket: %w", err)
		}
		if err := shim.RemoveSocket(address); err != nil {
			return nil, fmt.Errorf("removing a stale shim socket: %w", err)
		}
		if listener, err = shim.NewSocket(address); err != nil {
			return nil, fmt.Errorf("creating the shim socket: %w", err)
		}
	}
	// the shim serves on the socket file from here on: closing this copy must not remove it
	listener.SetUnlinkOnClose(false)
	defer listener.Close()
	defer func() {
		if retErr != nil {
			_ = shim.RemoveSocket(address)
		}
	}()
	return result, spawn(ns, params, cwd, listener)
}

// spawn starts this binary as the shim server, handing it the listening socket (fd 3).
func spawn(ns string, params *bootapi.BootstrapParams, cwd string, listener interface{ File() (*os.File, error) }) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	file, err := listener.File()
	if err != nil {
		return err
	}
	defer file.Close()
	cmd := exec.Command(self, "-namespace", ns, "-id", params.GetInstanceID(), "-address", params.GetContainerdGrpcAddress())
	cmd.Dir = cwd
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.ExtraFiles = []*os.File{file}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	if err := shim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		return fmt.Errorf("adjusting the shim's OOM score: %w", err)
	}
	return nil
}

// Stop cleans up after a task whose shim is gone: a sandbox's VM is handed back to the hypervisor part.
func (Manager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	stopped := shim.StopStatus{ExitedAt: time.Now(), ExitStatus: 128 + int(syscall.SIGKILL)}
	cwd, err := os.Getwd()
	if err != nil {
		return stopped, err
	}
	spec, err := readSpec(filepath.Join(filepath.Dir(cwd), id))
	if err != nil {
		log.G(ctx).WithError(err).Warn("no spec for a task whose shim is gone")
		return stopped, nil
	}
	if kindOf(spec.Annotations) != kindContainer {
		if err := stopVM(ctx, podVM{sandboxID: id, socket: hypervisorSocket()}); err != nil {
			log.G(ctx).WithField("pod", podLabel(spec.Annotations, id)).WithError(err).Warn("handing the VM back")
		}
	}
	return stopped, nil
}

// Info names the runtime; it takes no options.
func (m Manager) Info(context.Context, io.Reader) (*types.RuntimeInfo, error) {
	return &types.RuntimeInfo{Name: RuntimeName, Version: &types.RuntimeVersion{Version: m.Version}}, nil
}
