package agent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"peerpods.io/runtime/pkg/agentapi"
)

func TestProcessSpecDefaults(t *testing.T) {
	p := processSpec(&agentapi.Process{Args: []string{"sh"}, Env: []string{"A=1"}, User: &agentapi.User{Uid: 1000, Gid: 100, AdditionalGids: []uint32{5}}})
	if p.Cwd != "/" || !slices.Contains(p.Env, defaultPath) || !slices.Contains(p.Env, "A=1") {
		t.Errorf("cwd %q env %v: want / and a default PATH", p.Cwd, p.Env)
	}
	if p.User.UID != 1000 || p.User.GID != 100 || !slices.Equal(p.User.AdditionalGids, []uint32{5}) {
		t.Errorf("user %+v", p.User)
	}
	if !slices.Equal(p.Capabilities.Bounding, defaultCapabilities) || len(p.Capabilities.Ambient) != 0 {
		t.Errorf("no capabilities asked for should give the default set, got %+v", p.Capabilities)
	}
	own := processSpec(&agentapi.Process{Args: []string{"sh"}, Env: []string{"PATH=/opt"}, Capabilities: &agentapi.Capabilities{}})
	if slices.Contains(own.Env, defaultPath) || len(own.Capabilities.Bounding) != 0 {
		t.Errorf("a process's own PATH and empty capability sets must stay: %v %+v", own.Env, own.Capabilities)
	}
}

func TestContainerSpec(t *testing.T) {
	req := &agentapi.CreateContainerRequest{
		Process:        &agentapi.Process{Args: []string{"sh"}},
		Mounts:         []*agentapi.Mount{{Destination: "/etc/config", Tree: "config", Readonly: true}, {Destination: "/etc/hosts", Tree: "files", Path: "hosts"}, {Destination: "/scratch", PodVolume: "scratch"}},
		ReadonlyRootfs: true,
	}
	spec := containerSpec("c1", req, map[string]string{"rootfs": "/b/c1/rootfs", "config": "/b/c1/trees/config", "files": "/b/c1/trees/files"}, "/v", "/peerpods", "")
	if spec.Root.Path != "rootfs" || !spec.Root.Readonly || spec.Linux.CgroupsPath != "/peerpods/c1" {
		t.Errorf("root %+v cgroup %q", spec.Root, spec.Linux.CgroupsPath)
	}
	var kinds []specs.LinuxNamespaceType
	for _, ns := range spec.Linux.Namespaces {
		kinds = append(kinds, ns.Type)
	}
	if slices.Contains(kinds, specs.NetworkNamespace) || !slices.Contains(kinds, specs.PIDNamespace) || !slices.Contains(kinds, specs.MountNamespace) {
		t.Errorf("namespaces %v: own pid and mount, the VM's network", kinds)
	}
	mounts := map[string]specs.Mount{}
	for _, m := range spec.Mounts {
		mounts[m.Destination] = m
	}
	if m := mounts["/etc/config"]; m.Source != "/b/c1/trees/config" || !slices.Contains(m.Options, "ro") || m.Type != "bind" {
		t.Errorf("config mount %+v", m)
	}
	if m := mounts["/etc/hosts"]; m.Source != "/b/c1/trees/files/hosts" || slices.Contains(m.Options, "ro") {
		t.Errorf("hosts mount %+v", m)
	}
	if m := mounts["/scratch"]; m.Source != "/v/scratch" || slices.Contains(m.Options, "ro") {
		t.Errorf("pod volume mount %+v", m)
	}
	if _, ok := mounts["/proc"]; !ok {
		t.Error("no /proc")
	}
}

func TestMakePodVolumesIsWritableByAllAndKeepsWhatIsThere(t *testing.T) {
	dir := t.TempDir()
	mounts := []*agentapi.Mount{{Destination: "/scratch", PodVolume: "scratch"}, {Destination: "/config", Tree: "config"}}
	if err := makePodVolumes(dir, mounts); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, "scratch"))
	if err != nil || info.Mode().Perm() != 0o777 {
		t.Fatalf("pod volume %v, %v: want a folder with mode 0777", info, err)
	}
	written := filepath.Join(dir, "scratch", "file")
	if err := os.WriteFile(written, []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := makePodVolumes(dir, mounts); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(written); string(data) != "kept" {
		t.Fatalf("a second container's create emptied the pod volume: %q, %v", data, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("only the pod volume is made, got %v", entries)
	}
}
