package shim

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestVolumesShipsBoundFoldersOnly(t *testing.T) {
	folders := map[string]bool{"/var/lib/kubelet/pods/u/volumes/kubernetes.io~configmap/cfg": true, "/run/containerd/shm": true, "/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/scratch": true}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/kubelet/pods/u/etc-hosts", Options: []string{"rbind", "rw"}},
		{Destination: "/config", Type: "bind", Source: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~configmap/cfg", Options: []string{"rbind", "ro"}},
		{Destination: "/dev/shm", Type: "bind", Source: "/run/containerd/shm", Options: []string{"rbind", "rw"}},
		{Destination: "/scratch", Source: "/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/scratch", Options: []string{"rbind", "rw"}},
	}
	got := volumes(mounts, func(p string) bool { return folders[p] })
	if len(got) != 2 {
		t.Fatalf("want the ConfigMap and the emptyDir, got %v", got)
	}
	cfg, scratch := got[0], got[1]
	if cfg.mount.GetDestination() != "/config" || cfg.mount.GetTree() != "volume-0" || !cfg.mount.GetReadonly() || cfg.source != mounts[2].Source {
		t.Errorf("ConfigMap: %v from %s", cfg.mount, cfg.source)
	}
	if scratch.mount.GetDestination() != "/scratch" || scratch.mount.GetPodVolume() != "scratch" || scratch.mount.GetTree() != "" || scratch.source != "" || scratch.mount.GetReadonly() {
		t.Errorf("emptyDir, the pod's own volume in the VM (nothing shipped): %v from %q", scratch.mount, scratch.source)
	}
}

func TestUnderSystemPath(t *testing.T) {
	for path, want := range map[string]bool{"/dev/shm": true, "/proc": true, "/sys/fs/cgroup": true, "/devices": false, "/config": false, "/dev/../data": false} {
		if got := underSystemPath(path); got != want {
			t.Errorf("%s: got %v, want %v", path, got, want)
		}
	}
}
