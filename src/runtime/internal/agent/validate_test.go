package agent

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"peerpods.io/runtime/pkg/agentapi"
)

func TestIDsAndTreeNames(t *testing.T) {
	for _, id := range []string{"c1", "0123456789abcdef", "app_1.sidecar-2"} {
		if err := validateContainerID(id); err != nil {
			t.Errorf("id %q refused: %v", id, err)
		}
	}
	for _, id := range []string{"", "../x", "a/b", "-lead", strings.Repeat("a", 129), "sp ace"} {
		if status.Code(validateContainerID(id)) != codes.InvalidArgument {
			t.Errorf("id %q accepted", id)
		}
	}
	for _, name := range []string{"", "Upper", "a/b", "..", ".hidden"} {
		if status.Code(validateTreeName(name)) != codes.InvalidArgument {
			t.Errorf("tree name %q accepted", name)
		}
	}
}

func TestValidateProcess(t *testing.T) {
	good := &agentapi.Process{Args: []string{"sh"}, Env: []string{"A=1", "B="}, Cwd: "/work", Capabilities: &agentapi.Capabilities{Bounding: []string{"CAP_KILL"}}}
	if err := validateProcess(good); err != nil {
		t.Fatalf("a good process refused: %v", err)
	}
	bad := map[string]*agentapi.Process{
		"no process":         nil,
		"no args":            {},
		"empty program":      {Args: []string{""}},
		"relative cwd":       {Args: []string{"sh"}, Cwd: "work"},
		"env without =":      {Args: []string{"sh"}, Env: []string{"NOVALUE"}},
		"env without name":   {Args: []string{"sh"}, Env: []string{"=x"}},
		"unknown capability": {Args: []string{"sh"}, Capabilities: &agentapi.Capabilities{Effective: []string{"CAP_FLY"}}},
	}
	for name, p := range bad {
		if err := validateProcess(p); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
}

func TestValidateMounts(t *testing.T) {
	trees := map[string]string{"rootfs": "/b/rootfs", "config": "/b/trees/config"}
	if err := validateMounts([]*agentapi.Mount{{Destination: "/etc/app", Tree: "config"}, {Destination: "/etc/hosts", Tree: "config", Path: "dir/hosts"}, {Destination: "/scratch", PodVolume: "scratch"}}, trees); err != nil {
		t.Fatalf("good mounts refused: %v", err)
	}
	bad := map[string]*agentapi.Mount{
		"relative destination": {Destination: "etc", Tree: "config"},
		"unclean destination":  {Destination: "/etc/../x", Tree: "config"},
		"root destination":     {Destination: "/", Tree: "config"},
		"missing tree":         {Destination: "/x", Tree: "secret"},
		"the rootfs":           {Destination: "/x", Tree: "rootfs"},
		"path out of the tree": {Destination: "/x", Tree: "config", Path: "../../etc"},
		"absolute path":        {Destination: "/x", Tree: "config", Path: "/etc"},
		"pod volume and tree":  {Destination: "/x", Tree: "config", PodVolume: "scratch"},
		"pod volume out":       {Destination: "/x", PodVolume: "../etc"},
	}
	for name, m := range bad {
		if err := validateMounts([]*agentapi.Mount{m}, trees); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
}

func TestSignalAndSizeBounds(t *testing.T) {
	if validateSignal(9) != nil || validateSignal(0) == nil || validateSignal(65) == nil {
		t.Error("signals must be 1..64")
	}
	if validateSize(24, 80) != nil || validateSize(0, 80) == nil || validateSize(24, 70000) == nil {
		t.Error("sizes must be 1..65535")
	}
}
