package agent

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"peerpods.io/runtime/pkg/agentapi"
)

// UptimeMs is the VM's uptime from /proc/uptime.
func UptimeMs() uint64 {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	seconds, err := strconv.ParseFloat(strings.Fields(string(data) + " 0")[0], 64)
	if err != nil {
		return 0
	}
	return uint64(seconds * 1000)
}

func KernelRelease() string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return ""
	}
	return unix.ByteSliceToString(uts.Release[:])
}

func vcpus() uint32 {
	return uint32(runtime.NumCPU())
}

// VirtioPort is the /dev node of the virtio-serial port with that name, or "" if the VM has none.
func VirtioPort(name string) string {
	dirs, _ := filepath.Glob("/sys/class/virtio-ports/*")
	for _, dir := range dirs {
		if data, err := os.ReadFile(filepath.Join(dir, "name")); err == nil && strings.TrimSpace(string(data)) == name {
			return filepath.Join("/dev", filepath.Base(dir))
		}
	}
	return ""
}

// leftovers counts what containers left in the VM: bundle folders, runc states, cgroups, and the
// bytes used where bundles live.
func leftovers(cfg Config) *agentapi.Leftovers {
	var st unix.Statfs_t
	var used uint64
	if unix.Statfs(cfg.BundleDir, &st) == nil {
		used = (st.Blocks - st.Bfree) * uint64(st.Bsize)
	}
	return &agentapi.Leftovers{
		Bundles:     countEntries(cfg.BundleDir, false),
		RuncStates:  countEntries(cfg.RuncRoot, false),
		Cgroups:     countEntries(filepath.Join(cfg.CgroupRoot, cfg.CgroupParent), true),
		BundleBytes: used,
	}
}

func countEntries(dir string, dirsOnly bool) uint32 {
	entries, _ := os.ReadDir(dir)
	var n uint32
	for _, entry := range entries {
		if !dirsOnly || entry.IsDir() {
			n++
		}
	}
	return n
}
