package agent

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"peerpods.io/runtime/pkg/agentapi"
)

func TestUploadInChunks(t *testing.T) {
	target := t.TempDir()
	stream := tarOf(t, file("hello", "hello, world\n", 0o644))
	u := startUpload(target, roomy)
	half := len(stream) / 2
	if _, finished, err := u.write(&agentapi.WriteTreeRequest{Tree: "rootfs", Data: stream[:half]}); err != nil || finished {
		t.Fatalf("first chunk: finished=%v err=%v", finished, err)
	}
	_, _, err := u.write(&agentapi.WriteTreeRequest{Tree: "rootfs", Data: stream[half:], Offset: 0})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a repeated chunk: got %v, want FailedPrecondition", err)
	}
	resp, finished, err := u.write(&agentapi.WriteTreeRequest{Tree: "rootfs", Data: stream[half:], Offset: uint64(half), Last: true})
	if err != nil || !finished || resp.GetEntries() != 1 || resp.GetReceived() != uint64(len(stream)) {
		t.Fatalf("last chunk: %v finished=%v err=%v", resp, finished, err)
	}
	if data, _ := os.ReadFile(filepath.Join(target, "hello")); string(data) != "hello, world\n" {
		t.Errorf("unpacked %q", data)
	}
}

func TestUploadAborted(t *testing.T) {
	u := startUpload(t.TempDir(), roomy)
	stream := tarOf(t, file("a", "data", 0o644))
	if _, _, err := u.write(&agentapi.WriteTreeRequest{Data: stream[:100]}); err != nil {
		t.Fatal(err)
	}
	u.abort()
	if _, finished, err := u.write(&agentapi.WriteTreeRequest{Data: stream[100:], Offset: 100, Last: true}); err == nil || !finished {
		t.Fatalf("a chunk after abort: finished=%v err=%v", finished, err)
	}
}
