package agent

import (
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"peerpods.io/runtime/pkg/agentapi"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// processSpec is the OCI process for a request's process (validated by validateProcess).
func processSpec(p *agentapi.Process) *specs.Process {
	env := append([]string(nil), p.GetEnv()...)
	if !hasVariable(env, "PATH") {
		env = append(env, defaultPath)
	}
	cwd := p.GetCwd()
	if cwd == "" {
		cwd = "/"
	}
	return &specs.Process{
		Terminal:        p.GetTerminal(),
		User:            specs.User{UID: p.GetUser().GetUid(), GID: p.GetUser().GetGid(), AdditionalGids: p.GetUser().GetAdditionalGids()},
		Args:            p.GetArgs(),
		Env:             env,
		Cwd:             cwd,
		Capabilities:    capabilitySpec(p.GetCapabilities()),
		NoNewPrivileges: p.GetNoNewPrivileges(),
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
	}
}

func hasVariable(env []string, name string) bool {
	for _, entry := range env {
		if strings.HasPrefix(entry, name+"=") {
			return true
		}
	}
	return false
}

func capabilitySpec(c *agentapi.Capabilities) *specs.LinuxCapabilities {
	if c == nil {
		return &specs.LinuxCapabilities{Bounding: defaultCapabilities, Effective: defaultCapabilities, Permitted: defaultCapabilities}
	}
	return &specs.LinuxCapabilities{Bounding: c.GetBounding(), Effective: c.GetEffective(), Permitted: c.GetPermitted(), Inheritable: c.GetInheritable(), Ambient: c.GetAmbient()}
}

// containerSpec is the OCI config.json for a container whose trees were unpacked into treeDirs
// (tree name to folder) and whose pod volumes are folders of volumeDir. The rootfs is the bundle's
// "rootfs" folder; its cgroup sits under cgroupParent. It joins the network namespace at netns
// (the pod's), or shares the VM's when netns is "".
func containerSpec(id string, req *agentapi.CreateContainerRequest, treeDirs map[string]string, volumeDir, cgroupParent, netns string) *specs.Spec {
	mounts := append(baseMounts(), treeMounts(req.GetMounts(), treeDirs, volumeDir)...)
	// IPC and UTS are the VM's: a pod's containers share them.
	namespaces := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}}
	if netns != "" {
		namespaces = append(namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: netns})
	}
	return &specs.Spec{
		Version: specs.Version,
		Process: processSpec(req.GetProcess()),
		Root:    &specs.Root{Path: RootfsTree, Readonly: req.GetReadonlyRootfs()},
		Mounts:  mounts,
		Linux: &specs.Linux{
			CgroupsPath: cgroupParent + "/" + id,
			Namespaces:  namespaces,
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// baseMounts are the file systems every container gets (containerd's defaults, less mqueue: IPC is the VM's).
func baseMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// treeMounts binds uploaded trees (or a path inside one), and pod volumes, into the container.
func treeMounts(mounts []*agentapi.Mount, treeDirs map[string]string, volumeDir string) []specs.Mount {
	out := make([]specs.Mount, 0, len(mounts))
	for _, m := range mounts {
		options := []string{"rbind", "rprivate", "nosuid", "nodev"}
		if m.GetReadonly() {
			options = append(options, "ro")
		}
		source := filepath.Join(treeDirs[m.GetTree()], filepath.FromSlash(m.GetPath()))
		if m.GetPodVolume() != "" {
			source = filepath.Join(volumeDir, m.GetPodVolume())
		}
		out = append(out, specs.Mount{Destination: m.GetDestination(), Type: "bind", Source: source, Options: options})
	}
	return out
}
