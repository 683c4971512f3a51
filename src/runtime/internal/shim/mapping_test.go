package shim

import (
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"peerpods.io/runtime/pkg/agentapi"
)

func criSandbox() map[string]string {
	return map[string]string{
		annotationContainerType:                   containerTypeSandbox,
		annotationSandboxID:                       "sb1",
		annotationSandboxName:                     "hello",
		annotationSandboxNamespace:                "demo",
		annotationSandboxUID:                      "uid-1",
		"io.kubernetes.cri.sandbox-log-directory": "/var/log/pods/x",
	}
}

func TestVMAnnotationsKeepsOnlyThePodIdentity(t *testing.T) {
	got, err := vmAnnotations(criSandbox())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{annotationSandboxName: "hello", annotationSandboxNamespace: "demo", annotationSandboxUID: "uid-1"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestVMAnnotationsNamesWhatIsMissing(t *testing.T) {
	annotations := criSandbox()
	delete(annotations, annotationSandboxUID)
	_, err := vmAnnotations(annotations)
	if err == nil || !strings.Contains(err.Error(), annotationSandboxUID) {
		t.Fatalf("want an error naming %s, got %v", annotationSandboxUID, err)
	}
}

func TestKindAndShimGroup(t *testing.T) {
	sandbox := criSandbox()
	container := map[string]string{annotationContainerType: "container", annotationSandboxID: "sb1"}
	cases := []struct {
		name        string
		annotations map[string]string
		kind        taskKind
		group       string
	}{
		{"sandbox", sandbox, kindSandbox, "task"},
		{"container of a sandbox", container, kindContainer, "sb1"},
		{"ctr run", map[string]string{}, kindStandalone, "task"},
	}
	for _, c := range cases {
		if got := kindOf(c.annotations); got != c.kind {
			t.Errorf("%s: kind %v, want %v", c.name, got, c.kind)
		}
		if got := shimGroup("task", c.annotations); got != c.group {
			t.Errorf("%s: group %q, want %q", c.name, got, c.group)
		}
	}
}

func TestPodLabel(t *testing.T) {
	if got := podLabel(criSandbox(), "sb1"); got != "demo/hello" {
		t.Fatalf("got %q", got)
	}
	if got := podLabel(nil, "task"); got != "task" {
		t.Fatalf("got %q", got)
	}
}

func TestNetnsPath(t *testing.T) {
	spec := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-1"}}}}
	if got := netnsPath(spec); got != "/var/run/netns/cni-1" {
		t.Fatalf("got %q", got)
	}
	if got := netnsPath(&specs.Spec{}); got != "" {
		t.Fatalf("got %q for a spec without linux", got)
	}
}

func TestAgentProcessCarriesTheOCIProcess(t *testing.T) {
	p := &specs.Process{
		Args: []string{"sh", "-c", "uname -r"}, Env: []string{"PATH=/bin", "A=b"}, Cwd: "/work",
		User:            specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{10}},
		Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_KILL"}},
		NoNewPrivileges: true, Terminal: true,
	}
	got, err := agentProcess(p, true)
	if err != nil {
		t.Fatal(err)
	}
	want := &agentapi.Process{
		Args: p.Args, Env: p.Env, Cwd: "/work", NoNewPrivileges: true, Terminal: true, Stdin: true,
		User:         &agentapi.User{Uid: 1000, Gid: 100, AdditionalGids: []uint32{10}},
		Capabilities: &agentapi.Capabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_KILL"}},
	}
	if got.String() != want.String() {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestAgentProcessRefusesNoArgs(t *testing.T) {
	for _, p := range []*specs.Process{nil, {Cwd: "/"}} {
		if _, err := agentProcess(p, false); err == nil {
			t.Fatalf("want an error for %+v", p)
		}
	}
}

func TestExitEventNamesTheProcess(t *testing.T) {
	exit := &agentapi.WaitProcessResponse{ExitCode: 3, ExitedAtUnixMs: 1_700_000_000_123}
	init := exitEvent("c1", "", 42, exit)
	if init.ContainerID != "c1" || init.ID != "c1" || init.Pid != 42 || init.ExitStatus != 3 || init.ExitedAt.AsTime().UnixMilli() != 1_700_000_000_123 {
		t.Fatalf("init exit: %v", init)
	}
	if e := exitEvent("c1", "exec-7", 43, exit); e.ID != "exec-7" || e.ContainerID != "c1" {
		t.Fatalf("exec exit: %v", e)
	}
}

func TestSignalledIs128PlusTheSignal(t *testing.T) {
	if got := signalled(9).GetExitCode(); got != 137 {
		t.Fatalf("got %d", got)
	}
}

func TestProcessRecordsOneExit(t *testing.T) {
	p := newProcess("c1", "", nil, stdio{})
	p.started(7)
	if !p.setExited(&agentapi.WaitProcessResponse{ExitCode: 1}) {
		t.Fatal("the first exit was not recorded")
	}
	if p.setExited(&agentapi.WaitProcessResponse{ExitCode: 2}) {
		t.Fatal("a second exit was recorded")
	}
	<-p.exited
	if pid, status, exit := p.snapshot(); pid != 7 || status.String() != "STOPPED" || exit.GetExitCode() != 1 {
		t.Fatalf("pid %d status %v exit %v", pid, status, exit)
	}
}
