package agent

import (
	"fmt"
	"os"
	"os/exec"
	"sync"

	runc "github.com/containerd/go-runc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Workload is the pod's shell workload: its first command run by the VM's busybox sh, without its
// image, with its output on the virtio port the node logs. It runs at most once per VM.
type Workload struct {
	// Script is where the script is saved; Shell runs it; Output opens where its output goes.
	Script  string
	Shell   string
	Output  func() (*os.File, error)
	Monitor runc.ProcessMonitor
	Status  *StatusPort

	mu    sync.Mutex
	state string
}

// State is "none", "running" or "exited N".
func (w *Workload) State() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state == "" {
		return "none"
	}
	return w.state
}

func (w *Workload) Start(script string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != "" {
		return status.Error(codes.AlreadyExists, "a workload was already started")
	}
	if err := os.WriteFile(w.Script, []byte(script), 0o700); err != nil {
		return internal(err, "saving the workload script")
	}
	out, err := w.Output()
	if err != nil {
		return internal(err, "opening the workload's output")
	}
	cmd := exec.Command(w.Shell, w.Script)
	cmd.Stdout, cmd.Stderr = out, out
	exit, err := w.Monitor.Start(cmd)
	_ = out.Close()
	if err != nil {
		return internal(err, "starting the workload")
	}
	w.state = "running"
	go func() {
		code, _ := w.Monitor.Wait(cmd, exit)
		w.Status.WorkloadExited(code)
		w.mu.Lock()
		w.state = fmt.Sprintf("exited %d", code)
		w.mu.Unlock()
	}()
	return nil
}
