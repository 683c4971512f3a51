package agent

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"time"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"
)

// unclaimedExitTTL bounds how long the exit of a process nobody waits for is kept: a process runc
// started can exit before its pid is read from runc's pid file.
const unclaimedExitTTL = 5 * time.Minute

// Reaper collects the exit of every child of the agent: the runc commands it runs, the container
// processes that runc leaves to it (the agent is PID 1 or a child subreaper), and the workload.
// As go-runc's Monitor it starts commands so that no exit is reaped before its waiter is known.
type Reaper struct {
	mu        sync.Mutex
	waiters   map[int][]chan runc.Exit
	unclaimed map[int]runc.Exit
}

// NewReaper makes the agent the reaper of its orphaned descendants and starts reaping.
func NewReaper() (*Reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, err
	}
	r := &Reaper{waiters: map[int][]chan runc.Exit{}, unclaimed: map[int]runc.Exit{}}
	signals := make(chan os.Signal, 32)
	signal.Notify(signals, unix.SIGCHLD)
	go func() {
		for range signals {
			r.reap()
		}
	}()
	return r, nil
}

// reap collects every exited child and hands each exit to its waiters.
func (r *Reaper) reap() {
	for {
		var status unix.WaitStatus
		pid, err := unix.Wait4(-1, &status, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.deliver(runc.Exit{Pid: pid, Status: exitCode(status), Timestamp: time.Now()})
	}
}

// exitCode is the shell's convention: the exit status, or 128+N for a process killed by signal N.
func exitCode(status unix.WaitStatus) int {
	if status.Signaled() {
		return 128 + int(status.Signal())
	}
	return status.ExitStatus()
}

func (r *Reaper) deliver(exit runc.Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	waiters := r.waiters[exit.Pid]
	delete(r.waiters, exit.Pid)
	for _, waiter := range waiters {
		waiter <- exit
	}
	if len(waiters) == 0 {
		r.pruneUnclaimed(exit.Timestamp)
		r.unclaimed[exit.Pid] = exit
	}
}

func (r *Reaper) pruneUnclaimed(now time.Time) {
	for pid, exit := range r.unclaimed {
		if now.Sub(exit.Timestamp) > unclaimedExitTTL {
			delete(r.unclaimed, pid)
		}
	}
}

// Start starts c; its exit arrives on the returned channel (go-runc's ProcessMonitor).
func (r *Reaper) Start(c *exec.Cmd) (chan runc.Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := c.Start(); err != nil {
		return nil, err
	}
	// An unclaimed exit under this pid belonged to an earlier process.
	delete(r.unclaimed, c.Process.Pid)
	exit := make(chan runc.Exit, 1)
	r.waiters[c.Process.Pid] = append(r.waiters[c.Process.Pid], exit)
	return exit, nil
}

// StartLocked is Start on a goroutine locked to its OS thread (for Pdeathsig).
func (r *Reaper) StartLocked(c *exec.Cmd) (chan runc.Exit, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return r.Start(c)
}

// Wait waits for c's exit from Start and for its output copying to finish.
func (r *Reaper) Wait(c *exec.Cmd, exit chan runc.Exit) (int, error) {
	e := <-exit
	// The process is reaped already; Wait only finishes copying its output (and reports ECHILD).
	_ = c.Wait()
	return e.Status, nil
}

// WaitPid delivers the exit of pid, a process that runc started and left to the agent.
func (r *Reaper) WaitPid(pid int) <-chan runc.Exit {
	r.mu.Lock()
	defer r.mu.Unlock()
	exit := make(chan runc.Exit, 1)
	if e, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		exit <- e
		return exit
	}
	r.waiters[pid] = append(r.waiters[pid], exit)
	return exit
}
