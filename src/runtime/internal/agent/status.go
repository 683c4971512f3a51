package agent

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// StatusPort writes the lines the node reads from the VM's status port (a file on the host):
// `ready boot_ms=N kernel=R` once the agent serves, `workload exited code=N`, and a heartbeat
// `heartbeat uptime_ms=N workload=none|running|exited:N` at a fixed interval.
type StatusPort struct {
	mu sync.Mutex
	w  io.Writer
}

func NewStatusPort(w io.Writer) *StatusPort {
	return &StatusPort{w: w}
}

func (s *StatusPort) line(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = fmt.Fprintf(s.w, format+"\n", args...)
}

func (s *StatusPort) Ready(bootMs uint64, kernel string) {
	s.line("ready boot_ms=%d kernel=%s", bootMs, kernel)
}

func (s *StatusPort) WorkloadExited(code int) {
	s.line("workload exited code=%d", code)
}

// Heartbeats writes a heartbeat every interval until ctx ends.
func (s *StatusPort) Heartbeats(ctx context.Context, interval time.Duration, uptimeMs func() uint64, workload func() string) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			s.line("heartbeat uptime_ms=%d workload=%s", uptimeMs(), strings.ReplaceAll(workload(), " ", ":"))
		}
	}
}
