package shim

import (
	"os"
	"regexp"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// kubeletTerminationLog is where kubelet keeps a container's termination log on the node:
// <pod folder>/containers/<container name>/<id>, bound into the container as one file.
var kubeletTerminationLog = regexp.MustCompile(`/pods/[^/]+/containers/[^/]+/[^/]+$`)

// terminationLogFile is the node's file behind the container's termination log ("" if none).
func terminationLogFile(mounts []specs.Mount) string {
	for _, m := range mounts {
		if isBind(m) && kubeletTerminationLog.MatchString(m.Source) {
			return m.Source
		}
	}
	return ""
}

// maxTerminationMessage is what kubelet reads of a termination log at most.
const maxTerminationMessage = 4096

// writeTerminationMessage puts why the container ended into the file kubelet reads its termination
// message from (the container wrote its own in the VM, which the node cannot read).
func writeTerminationMessage(file, message string) error {
	if file == "" {
		return nil
	}
	if len(message) > maxTerminationMessage {
		message = message[:maxTerminationMessage]
	}
	// kubelet made the file; the shim only replaces what it holds
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(message)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return err
}
