package shim

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/api/types"
	"github.com/containerd/containerd/v2/core/mount"
	"peerpods.io/runtime/pkg/agentclient"
)

// shipRootfs mounts the container's snapshot on the node, sends its tree to the agent as the
// container's "rootfs" tree, and unmounts it again: the VM cannot see the node's disk.
func shipRootfs(ctx context.Context, agent *agentclient.Client, containerID string, rootfs []*types.Mount) (err error) {
	if len(rootfs) == 0 {
		return fmt.Errorf("containerd gave container %s no rootfs mounts", containerID)
	}
	target, err := os.MkdirTemp("", "peerpods-rootfs-")
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := os.Remove(target); err == nil && rmErr != nil {
			err = rmErr
		}
	}()
	mounts := make([]mount.Mount, 0, len(rootfs))
	for _, m := range rootfs {
		mounts = append(mounts, mount.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	if err := mount.All(mounts, target); err != nil {
		return fmt.Errorf("mounting container %s's rootfs: %w", containerID, err)
	}
	defer func() {
		if umErr := mount.UnmountAll(target, 0); err == nil && umErr != nil {
			err = fmt.Errorf("unmounting container %s's rootfs: %w", containerID, umErr)
		}
	}()
	tree := agentclient.TarDir(target)
	defer tree.Close()
	if _, err := agent.PutTree(ctx, containerID, "rootfs", tree); err != nil {
		return fmt.Errorf("sending container %s's rootfs to the VM: %w", containerID, err)
	}
	return nil
}
