package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	runc "github.com/containerd/go-runc"
)

// Runtime runs containers: runc in the VM; tests use a stand-in that runs plain processes.
type Runtime interface {
	// Create makes the container from its bundle with proc's stdio and answers its init pid.
	Create(ctx context.Context, id, bundle string, proc *process) (int, error)
	Start(ctx context.Context, id string) error
	// Exec starts proc (its spec) in the running container and answers its pid.
	Exec(ctx context.Context, id, bundle string, proc *process) (int, error)
	Kill(ctx context.Context, id string, signal int, all bool) error
	Delete(ctx context.Context, id string, force bool) error
}

// Runc drives the runc binary through go-runc; the agent's Reaper must be runc.Monitor.
type Runc struct {
	Binary string
	Root   string
	// NoPivot makes runc chroot instead of pivot_root, which an initramfs root does not allow.
	NoPivot bool
}

func (r *Runc) client(logFile string) *runc.Runc {
	return &runc.Runc{Command: r.Binary, Root: r.Root, Log: logFile, LogFormat: runc.JSON}
}

func (r *Runc) Create(ctx context.Context, id, bundle string, proc *process) (int, error) {
	pidFile, logFile := filepath.Join(bundle, "init.pid"), filepath.Join(bundle, "runc.log")
	opts := &runc.CreateOpts{IO: proc.pipes, PidFile: pidFile, NoPivot: r.NoPivot}
	if proc.socket != nil {
		opts.ConsoleSocket = proc.socket
	}
	if err := r.client(logFile).Create(context.WithoutCancel(ctx), id, bundle, opts); err != nil {
		return 0, runcError("runc create", err, logFile)
	}
	return readPid(pidFile)
}

func (r *Runc) Start(ctx context.Context, id string) error {
	if err := r.client("").Start(context.WithoutCancel(ctx), id); err != nil {
		return internal(err, "runc start")
	}
	return nil
}

func (r *Runc) Exec(ctx context.Context, id, bundle string, proc *process) (int, error) {
	pidFile, logFile := filepath.Join(bundle, "exec-"+proc.execID+".pid"), filepath.Join(bundle, "exec-"+proc.execID+".log")
	defer os.Remove(pidFile)
	defer os.Remove(logFile)
	opts := &runc.ExecOpts{IO: proc.pipes, PidFile: pidFile, LogFile: logFile, Detach: true}
	if proc.socket != nil {
		opts.ConsoleSocket = proc.socket
	}
	if err := r.client("").Exec(context.WithoutCancel(ctx), id, *proc.spec, opts); err != nil {
		return 0, runcError("runc exec", err, logFile)
	}
	return readPid(pidFile)
}

func (r *Runc) Kill(ctx context.Context, id string, signal int, all bool) error {
	if err := r.client("").Kill(context.WithoutCancel(ctx), id, signal, &runc.KillOpts{All: all}); err != nil {
		return internal(err, "runc kill")
	}
	return nil
}

func (r *Runc) Delete(ctx context.Context, id string, force bool) error {
	if err := r.client("").Delete(context.WithoutCancel(ctx), id, &runc.DeleteOpts{Force: force}); err != nil {
		return internal(err, "runc delete")
	}
	return nil
}

func readPid(file string) (int, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0, internal(err, "reading runc's pid file")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, internal(fmt.Errorf("%q", data), "runc's pid file holds no pid")
	}
	return pid, nil
}

// runcError is err with the last error runc logged (its stderr is the container's, not ours).
func runcError(what string, err error, logFile string) error {
	if message := lastLoggedError(logFile); message != "" {
		return internal(fmt.Errorf("%s", message), "%s", what)
	}
	return internal(err, "%s", what)
}

func lastLoggedError(logFile string) string {
	file, err := os.Open(logFile)
	if err != nil {
		return ""
	}
	defer file.Close()
	var last string
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		var entry struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(scanner.Bytes(), &entry) == nil && (entry.Level == "error" || entry.Level == "fatal") {
			last = entry.Msg
		}
	}
	return last
}
