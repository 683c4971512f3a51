package podnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CreateNetns makes a new network namespace and keeps it alive with a bind mount at path (as
// `ip netns add` does), without moving the calling goroutine's thread out of its namespace.
func CreateNetns(path string) (err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	file, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("creating the netns file: %w", err)
	}
	_ = file.Close()
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	// unshare moves this thread into the new namespace: keep the goroutine on it until it is back.
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer origin.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("unsharing a network namespace: %w", err)
	}
	mountErr := unix.Mount(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), path, "", unix.MS_BIND, "")
	if err := netns.Set(origin); err != nil {
		// The thread stays locked and dies with the goroutine rather than serve others in the wrong namespace.
		return errors.Join(mountErr, fmt.Errorf("returning to the original network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	if mountErr != nil {
		return fmt.Errorf("bind-mounting the network namespace at %s: %w", path, mountErr)
	}
	return nil
}

// RemoveNetns unmounts and removes a namespace CreateNetns made; the kernel frees it (and the
// devices in it) once nothing else holds it. A path that does not exist is already removed.
func RemoveNetns(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting the network namespace at %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// RouteHandle is a netlink handle for links, addresses, routes and tc in `ns` (the current
// namespace when ns is netns.None()). Only NETLINK_ROUTE: netlink's default handle also opens
// XFRM and netfilter sockets, which a kernel without them (the pod VM's) refuses with
// "protocol not supported".
func RouteHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
}
