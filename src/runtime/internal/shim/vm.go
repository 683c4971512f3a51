package shim

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/containerd/ttrpc"
	"peerpods.io/runtime/pkg/agentclient"
	"peerpods.io/runtime/pkg/hypervisorapi"
)

// DefaultHypervisorSocket is where the node's hypervisor part serves hypervisor.Hypervisor.
const DefaultHypervisorSocket = "/run/peerpod/hypervisor.sock"

// hypervisorSocketEnv overrides DefaultHypervisorSocket (containerd passes the shim its environment).
const hypervisorSocketEnv = "PEERPODS_HYPERVISOR_SOCKET"

func hypervisorSocket() string {
	if path := os.Getenv(hypervisorSocketEnv); path != "" {
		return path
	}
	return DefaultHypervisorSocket
}

// podVM is the sandbox's VM as the hypervisor part hands it out.
type podVM struct {
	sandboxID string
	socket    string
}

// startVM asks the hypervisor part for the sandbox's VM (CreateVM, then StartVM) and answers the
// node-side socket forwarded to the VM's agent.
func startVM(ctx context.Context, vm podVM, annotations map[string]string, netns string) (string, error) {
	return agentSocket(ctx, vm, func(c hypervisorapi.HypervisorService) (string, error) {
		created, err := c.CreateVM(ctx, &hypervisorapi.CreateVMRequest{Id: vm.sandboxID, Annotations: annotations, NetworkNamespacePath: netns})
		if err != nil {
			return "", fmt.Errorf("CreateVM %s: %w", vm.sandboxID, err)
		}
		if _, err := c.StartVM(ctx, &hypervisorapi.StartVMRequest{Id: vm.sandboxID}); err != nil {
			return "", fmt.Errorf("StartVM %s: %w", vm.sandboxID, err)
		}
		return created.GetAgentSocketPath(), nil
	})
}

// startedVM asks the hypervisor part whether the sandbox's VM is (still) up: StartVM answers once
// its agent can be reached, and fails when the VM is gone.
func startedVM(ctx context.Context, vm podVM) error {
	_, err := agentSocket(ctx, vm, func(c hypervisorapi.HypervisorService) (string, error) {
		_, err := c.StartVM(ctx, &hypervisorapi.StartVMRequest{Id: vm.sandboxID})
		return "", err
	})
	return err
}

// stopVM tells the hypervisor part the sandbox is done with its VM.
func stopVM(ctx context.Context, vm podVM) error {
	_, err := agentSocket(ctx, vm, func(c hypervisorapi.HypervisorService) (string, error) {
		_, err := c.StopVM(ctx, &hypervisorapi.StopVMRequest{Id: vm.sandboxID})
		return "", err
	})
	return err
}

func agentSocket(ctx context.Context, vm podVM, call func(hypervisorapi.HypervisorService) (string, error)) (string, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "unix", vm.socket)
	if err != nil {
		return "", fmt.Errorf("connecting to the hypervisor part at %s: %w", vm.socket, err)
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	return call(hypervisorapi.NewHypervisorClient(client))
}

// dialAgent connects to the VM's agent through the forwarded socket and checks its protocol.
func dialAgent(ctx context.Context, socket string) (*agentclient.Client, error) {
	client, err := agentclient.Dial(ctx, "unix:"+socket)
	if err != nil {
		return nil, fmt.Errorf("the pod VM's agent at %s: %w", socket, err)
	}
	return client, nil
}
