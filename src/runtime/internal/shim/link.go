package shim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/log"
	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
)

// agentLink is the shim's connection to its pod VM's agent, through the socket the hypervisor part
// forwards. A dropped connection does not mean a dead VM: the hypervisor part may be restarting
// (it reopens the socket for the sandboxes it had). recover asks the hypervisor part about the VM
// and reconnects while the VM lives; once the VM is gone every call fails with the reason.
type agentLink struct {
	vm     podVM
	socket string
	onLost func(reason error)

	// reconnecting serialises recoveries: the first caller reconnects, the others find the result.
	reconnecting sync.Mutex
	mu           sync.Mutex
	client       *agentclient.Client
	lost         error
}

// vmLostError is why the pod's VM is gone; the containers that ran in it are reported exited with it.
type vmLostError struct{ reason string }

func (e *vmLostError) Error() string { return e.reason }

// Unwrap makes a lost VM a failed precondition for containerd (a call on it can never succeed).
func (e *vmLostError) Unwrap() error { return errdefs.ErrFailedPrecondition }

func isVMLost(err error) bool {
	var lost *vmLostError
	return errors.As(err, &lost)
}

// errReleased is what calls get once the shim has handed the VM back.
var errReleased = &vmLostError{reason: "the pod's VM was handed back to the hypervisor part"}

// silentWindow is how long the link waits for the hypervisor part to answer again (a restart, a
// DaemonSet rollout pulling its image) before it calls the VM lost: the containers run on in the
// VM meanwhile, so waiting costs nothing but a late report. recoverPause is the first pause between
// tries, doubled up to 2 s.
var (
	silentWindow = 5 * time.Minute
	recoverPause = 250 * time.Millisecond
	probeTimeout = 10 * time.Second
)

// A VM that dies on a routed network (the qemu VPC, a cloud) leaves an open connection behind: no
// FIN or RST reaches the node, and a wait in flight would block for good. So the link asks the agent
// for its health every heartbeatEvery and takes an answer later than heartbeatTimeout for a dropped
// connection, which sends it to the hypervisor part to learn whether the VM lives.
var (
	heartbeatEvery   = 5 * time.Second
	heartbeatTimeout = 10 * time.Second
)

func newAgentLink(vm podVM, socket string, client *agentclient.Client, onLost func(error)) *agentLink {
	return &agentLink{vm: vm, socket: socket, client: client, onLost: onLost}
}

// current is the live connection, or why there is none.
func (l *agentLink) current() (*agentclient.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return nil, l.lost
	}
	return l.client, nil
}

// heartbeat runs until the link is lost or released (see heartbeatEvery).
func (l *agentLink) heartbeat(ctx context.Context) {
	ticker := time.NewTicker(heartbeatEvery)
	defer ticker.Stop()
	for range ticker.C {
		client, err := l.current()
		if err != nil {
			return
		}
		asked, cancel := context.WithTimeout(ctx, heartbeatTimeout)
		_, err = client.Health(asked, &agentapi.HealthRequest{})
		cancel()
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ttrpc.ErrClosed) {
			log.G(ctx).WithField("sandbox", l.vm.sandboxID).WithError(err).Warn("the pod VM's agent missed its heartbeat")
			_ = l.recover(ctx, client)
		}
	}
}

// release closes the connection for good (the shim is done with the VM).
func (l *agentLink) release() error {
	l.mu.Lock()
	client := l.client
	if l.lost == nil {
		l.lost = errReleased
	}
	l.client = nil
	l.mu.Unlock()
	if client == nil {
		return nil
	}
	return client.Close()
}

// recover is called with the connection a call failed on; it answers nil once a new connection
// is up (or another caller already made one), or the VM's loss.
func (l *agentLink) recover(ctx context.Context, broken *agentclient.Client) error {
	l.reconnecting.Lock()
	defer l.reconnecting.Unlock()
	if client, err := l.current(); err != nil || client != broken {
		return err
	}
	_ = broken.Close()
	logger := log.G(ctx).WithField("sandbox", l.vm.sandboxID)
	logger.Warn("the connection to the pod VM's agent dropped; asking the hypervisor part about the VM")
	client, err := l.reconnect(ctx)
	l.mu.Lock()
	if l.lost != nil { // released meanwhile
		err = l.lost
	} else if err != nil {
		l.lost = err
	} else {
		l.client = client
	}
	l.mu.Unlock()
	if err != nil {
		if client != nil {
			_ = client.Close()
		}
		if err != errReleased {
			logger.WithError(err).Error("the pod's VM is lost")
			l.onLost(err)
		}
		return err
	}
	logger.Info("reconnected to the pod VM's agent")
	return nil
}

// reconnect tries until the VM answers again, the hypervisor part says it is gone, or nothing
// has answered for silentWindow.
func (l *agentLink) reconnect(ctx context.Context) (*agentclient.Client, error) {
	deadline := time.Now().Add(silentWindow)
	pause := recoverPause
	for {
		err := l.probe(ctx)
		if err == nil {
			var client *agentclient.Client
			if client, err = dialAgent(ctx, l.socket); err == nil {
				return client, nil
			}
		}
		var gone *vmLostError
		if errors.As(err, &gone) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, &vmLostError{reason: fmt.Sprintf("the pod's VM has not answered for %s: %v", silentWindow, err)}
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		pause = min(2*pause, 2*time.Second)
	}
}

// probe asks the hypervisor part whether the sandbox's VM is up (StartVM waits for its agent).
// A VM the hypervisor part calls gone, or a sandbox it does not know, is lost for good.
func (l *agentLink) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err := startedVM(ctx, l.vm)
	switch status.Code(err) {
	case codes.OK:
		return nil
	case codes.FailedPrecondition, codes.NotFound:
		return &vmLostError{reason: status.Convert(err).Message()}
	default:
		return err
	}
}

// repeat says whether a call may run again after the connection dropped under it: reads, waits
// and signals may; creating and starting may not (the agent may have done it before the drop).
type repeat bool

const (
	repeatable repeat = true
	once       repeat = false
)

// onAgent runs call on the agent. When the connection drops under it the link recovers; a
// repeatable call then runs again on the new connection, the others fail with the drop. Once the
// VM is lost, calls fail with why.
func onAgent[T any](ctx context.Context, l *agentLink, again repeat, call func(*agentclient.Client) (T, error)) (T, error) {
	var zero T
	for {
		client, err := l.current()
		if err != nil {
			return zero, err
		}
		out, callErr := call(client)
		if !errors.Is(callErr, ttrpc.ErrClosed) {
			return out, callErr
		}
		if err := l.recover(ctx, client); err != nil {
			return zero, err
		}
		if !again {
			return zero, fmt.Errorf("the connection to the pod VM's agent dropped during the call (it is back now): %w", callErr)
		}
	}
}
