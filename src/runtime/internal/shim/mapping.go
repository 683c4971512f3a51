// Package shim is containerd-shim-peerpods-v2: containerd's task API (v3) for one pod sandbox,
// whose containers run in the pod's VM through peerpods-agent.
package shim

import (
	"fmt"

	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/opencontainers/runtime-spec/specs-go"
	"peerpods.io/runtime/pkg/agentapi"
)

// The CRI annotations the shim reads (containerd's internal/cri/annotations).
const (
	annotationContainerType    = "io.kubernetes.cri.container-type"
	annotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	annotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	annotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	annotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	containerTypeSandbox       = "sandbox"
)

// vmAnnotations is what the hypervisor part needs to find the pod's VM: the CRI sandbox name,
// namespace and UID, which a sandbox task (or a task run on its own) must carry.
func vmAnnotations(annotations map[string]string) (map[string]string, error) {
	out := map[string]string{}
	for _, key := range []string{annotationSandboxName, annotationSandboxNamespace, annotationSandboxUID} {
		value := annotations[key]
		if value == "" {
			return nil, fmt.Errorf("the task has no %s annotation: the hypervisor part cannot tell which pod's VM it needs", key)
		}
		out[key] = value
	}
	return out, nil
}

// taskKind tells what a task is: the pod sandbox (the VM itself, no container in it), a container
// of a sandbox, or a task run on its own (ctr run), which brings up its VM and runs in it.
type taskKind int

const (
	kindStandalone taskKind = iota
	kindSandbox
	kindContainer
)

func kindOf(annotations map[string]string) taskKind {
	switch {
	case annotations[annotationContainerType] == containerTypeSandbox:
		return kindSandbox
	case annotations[annotationSandboxID] != "":
		return kindContainer
	default:
		return kindStandalone
	}
}

// podLabel names a pod for logs: "namespace/name", or the task id when the task names no pod.
func podLabel(annotations map[string]string, id string) string {
	if annotations[annotationSandboxName] == "" {
		return id
	}
	return annotations[annotationSandboxNamespace] + "/" + annotations[annotationSandboxName]
}

// netnsPath is the network namespace the runtime spec puts the sandbox in ("" when none).
func netnsPath(spec *specs.Spec) string {
	if spec.Linux == nil {
		return ""
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns.Path
		}
	}
	return ""
}

// agentProcess maps an OCI process to what the agent runs; stdin says whether containerd gave the
// task a stdin to copy from.
func agentProcess(p *specs.Process, stdin bool) (*agentapi.Process, error) {
	if p == nil || len(p.Args) == 0 {
		return nil, fmt.Errorf("the OCI spec has no process args to run")
	}
	out := &agentapi.Process{
		Args:            p.Args,
		Env:             p.Env,
		Cwd:             p.Cwd,
		NoNewPrivileges: p.NoNewPrivileges,
		Terminal:        p.Terminal,
		Stdin:           stdin,
		User:            &agentapi.User{Uid: p.User.UID, Gid: p.User.GID, AdditionalGids: p.User.AdditionalGids},
	}
	if c := p.Capabilities; c != nil {
		out.Capabilities = &agentapi.Capabilities{Bounding: c.Bounding, Effective: c.Effective, Permitted: c.Permitted, Inheritable: c.Inheritable, Ambient: c.Ambient}
	}
	return out, nil
}

// exitEvent is the TaskExit containerd and kubelet learn a process's end from.
func exitEvent(containerID, execID string, pid uint32, exit *agentapi.WaitProcessResponse) *eventstypes.TaskExit {
	id := execID
	if id == "" {
		id = containerID
	}
	return &eventstypes.TaskExit{
		ContainerID: containerID,
		ID:          id,
		Pid:         pid,
		ExitStatus:  uint32(exit.GetExitCode()),
		ExitedAt:    exitTimestamp(exit),
	}
}
