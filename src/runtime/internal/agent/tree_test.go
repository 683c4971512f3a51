package agent

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type entry struct {
	header tar.Header
	data   string
}

func tarOf(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.header
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(name, data string, mode int64) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, data}
}

func dir(name string) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}, ""}
}

func symlink(name, target string) entry {
	return entry{tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}, ""}
}

var roomy = TreeLimits{MaxBytes: 1 << 20, MaxEntries: 100, Room: func() uint64 { return 1 << 30 }}

func TestUnpackTree(t *testing.T) {
	target := t.TempDir()
	stream := tarOf(t,
		dir("bin/"), file("bin/busybox", "#!busybox", 0o4755), symlink("bin/sh", "busybox"), symlink("bin/abs", "/bin/busybox"),
		entry{tar.Header{Name: "bin/ash", Typeflag: tar.TypeLink, Linkname: "bin/busybox"}, ""},
		file("./etc/passwd", "root:x:0:0::/:/bin/sh\n", 0o644), file("etc/passwd", "replaced\n", 0o600),
		entry{tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}, ""},
	)
	stats, err := unpackTree(bytes.NewReader(stream), target, roomy)
	if err != nil {
		t.Fatal(err)
	}
	if stats.entries != 8 || stats.bytes != uint64(len("#!busybox")+len("root:x:0:0::/:/bin/sh\n")+len("replaced\n")) {
		t.Errorf("stats %+v", stats)
	}
	info, err := os.Stat(filepath.Join(target, "bin/busybox"))
	if err != nil || info.Mode()&os.ModeSetuid == 0 || info.Mode().Perm() != 0o755 {
		t.Errorf("busybox mode %v (%v)", info.Mode(), err)
	}
	if link, _ := os.Readlink(filepath.Join(target, "bin/abs")); link != "/bin/busybox" {
		t.Errorf("an absolute symlink is kept as it is (it resolves in the container): %q", link)
	}
	if data, _ := os.ReadFile(filepath.Join(target, "etc/passwd")); string(data) != "replaced\n" {
		t.Errorf("a later entry replaces an earlier one: %q", data)
	}
	if a, _ := os.Stat(filepath.Join(target, "bin/ash")); !os.SameFile(a, info) {
		t.Error("the hard link is not the same file")
	}
	if _, err := os.Lstat(filepath.Join(target, "dev/null")); !os.IsNotExist(err) {
		t.Error("devices are skipped (runc makes /dev)")
	}
}

func TestUnpackTreeStaysInside(t *testing.T) {
	outside := t.TempDir()
	cases := map[string][]byte{
		"dot-dot name":        tarOf(t, file("../escaped", "x", 0o644)),
		"dot-dot inside":      tarOf(t, file("a/../../escaped", "x", 0o644)),
		"through a symlink":   tarOf(t, symlink("out", outside), file("out/escaped", "x", 0o644)),
		"relative link out":   tarOf(t, symlink("out", "../.."+outside), file("out/escaped", "x", 0o644)),
		"hard link out":       tarOf(t, entry{tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}, ""}),
		"not a tar":           []byte(strings.Repeat("not a tar stream ", 64)),
		"truncated tar entry": tarOf(t, file("f", strings.Repeat("x", 2048), 0o644))[:1024],
	}
	for name, stream := range cases {
		target := t.TempDir()
		_, err := unpackTree(bytes.NewReader(stream), target, roomy)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 0 {
			t.Fatalf("%s: wrote outside the tree: %v", name, entries)
		}
	}
}

func TestUnpackTreeLimits(t *testing.T) {
	cases := map[string]struct {
		limits TreeLimits
		stream []byte
		want   string
	}{
		"bytes":   {TreeLimits{MaxBytes: 10, MaxEntries: 100, Room: roomy.Room}, tarOf(t, file("a", "123456", 0o644), file("b", "123456", 0o644)), "may hold 10 bytes"},
		"entries": {TreeLimits{MaxBytes: 1 << 20, MaxEntries: 2, Room: roomy.Room}, tarOf(t, dir("a"), dir("b"), dir("c")), "more than 2 entries"},
		"room":    {TreeLimits{MaxBytes: 1 << 20, MaxEntries: 100, Room: func() uint64 { return 3 }}, tarOf(t, file("a", "123456", 0o644)), "3 bytes free"},
	}
	for name, c := range cases {
		_, err := unpackTree(bytes.NewReader(c.stream), t.TempDir(), c.limits)
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ResourceExhausted mentioning %q", name, err, c.want)
		}
	}
}
