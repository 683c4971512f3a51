package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestTerminationLogFileIsKubeletsPerContainerFile(t *testing.T) {
	mounts := []specs.Mount{
		{Destination: "/etc/hosts", Type: "bind", Source: "/var/lib/kubelet/pods/u1/etc-hosts", Options: []string{"rbind"}},
		{Destination: "/dev/termination-log", Type: "bind", Source: "/var/lib/kubelet/pods/u1/containers/app/0a1b2c3d", Options: []string{"rbind", "rw"}},
	}
	if got := terminationLogFile(mounts); got != "/var/lib/kubelet/pods/u1/containers/app/0a1b2c3d" {
		t.Fatalf("termination log %q", got)
	}
	if got := terminationLogFile(mounts[:1]); got != "" {
		t.Fatalf("a pod without a termination log gave %q", got)
	}
}

func TestWriteTerminationMessageReplacesTheFileAndCapsIt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(file, []byte("an older, longer message"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeTerminationMessage(file, "VM gone"); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(file); string(data) != "VM gone" {
		t.Fatalf("file holds %q", data)
	}
	if err := writeTerminationMessage(file, strings.Repeat("x", 5000)); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(file); len(data) != maxTerminationMessage {
		t.Fatalf("file holds %d bytes", len(data))
	}
	if err := writeTerminationMessage(filepath.Join(t.TempDir(), "absent"), "x"); err == nil {
		t.Fatal("a file kubelet did not make was created")
	}
	if err := writeTerminationMessage("", "x"); err != nil {
		t.Fatal(err)
	}
}
