package agent

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// TreeLimits bound what one uploaded tree may put into the VM.
type TreeLimits struct {
	MaxBytes   uint64
	MaxEntries uint64
	// Room reports the bytes still free where trees are unpacked.
	Room func() uint64
}

type treeStats struct {
	bytes   uint64
	entries uint64
}

// unpackTree writes the tar stream r into dir (which must exist), refusing entries that would
// leave dir (".." names, writes through symlinks that point out) and stopping at the limits.
// Devices and FIFOs are skipped: runc makes a container's /dev.
func unpackTree(r io.Reader, dir string, limits TreeLimits) (treeStats, error) {
	var stats treeStats
	root, err := os.OpenRoot(dir)
	if err != nil {
		return stats, internal(err, "opening the tree folder")
	}
	defer root.Close()
	reader := tar.NewReader(r)
	for {
		header, err := reader.Next()
		if errors.Is(err, io.EOF) {
			return stats, nil
		}
		if err != nil {
			return stats, invalid("not a valid tar stream after %d entries: %v", stats.entries, err)
		}
		stats.entries++
		if stats.entries > limits.MaxEntries {
			return stats, exhausted("the tree has more than %d entries", limits.MaxEntries)
		}
		if err := unpackEntry(root, header, reader, &stats, limits); err != nil {
			return stats, err
		}
	}
}

func unpackEntry(root *os.Root, header *tar.Header, data io.Reader, stats *treeStats, limits TreeLimits) error {
	name, ok := entryPath(header.Name)
	if !ok {
		return invalid("tar entry %q leaves the tree", header.Name)
	}
	if name == "." {
		return nil
	}
	mode := header.FileInfo().Mode()
	var err error
	switch header.Typeflag {
	case tar.TypeDir:
		err = root.MkdirAll(name, 0o755)
	case tar.TypeReg:
		if size := uint64(max(header.Size, 0)); stats.bytes+size > limits.MaxBytes || size > limits.Room() {
			return exhausted("tar entry %q of %d bytes does not fit: the tree may hold %d bytes (%d written) and the VM has %d bytes free for trees",
				header.Name, size, limits.MaxBytes, stats.bytes, limits.Room())
		}
		err = writeFile(root, name, data)
		stats.bytes += uint64(max(header.Size, 0))
	case tar.TypeSymlink:
		err = replace(root, name, func() error { return root.Symlink(header.Linkname, name) })
	case tar.TypeLink:
		target, ok := entryPath(header.Linkname)
		if !ok {
			return invalid("hard link %q points out of the tree (%q)", header.Name, header.Linkname)
		}
		err = replace(root, name, func() error { return root.Link(target, name) })
	default:
		return nil
	}
	// A hard link shares its target's owner and mode.
	if err == nil && header.Typeflag != tar.TypeLink {
		err = root.Lchown(name, header.Uid, header.Gid)
	}
	// After the owner: chown clears the set-id bits.
	if err == nil && (header.Typeflag == tar.TypeDir || header.Typeflag == tar.TypeReg) {
		err = root.Chmod(name, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))
	}
	return fileError(header.Name, err)
}

// entryPath is a tar entry's name relative to the tree, or false when it climbs out of it.
func entryPath(name string) (string, bool) {
	clean := path.Clean(strings.TrimLeft(name, "/"))
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", false
	}
	return clean, true
}

func writeFile(root *os.Root, name string, data io.Reader) error {
	return replace(root, name, func() error {
		file, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(file, data)
		if closeErr := file.Close(); err == nil {
			err = closeErr
		}
		return err
	})
}

// replace makes name with create, first removing what a tar entry earlier in the stream left
// there (a later layer wins); parents are made as needed.
func replace(root *os.Root, name string, create func() error) error {
	if parent := path.Dir(name); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return err
		}
	}
	if err := root.RemoveAll(name); err != nil {
		return err
	}
	return create()
}

// fileError turns a failure to write an entry into the caller's error: no room is the caller's
// limit, anything else (a symlink pointing out, a bad path) is the tree's fault.
func fileError(name string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOSPC):
		return exhausted("no room left in the VM for tar entry %q", name)
	default:
		return invalid("cannot unpack tar entry %q: %v", name, err)
	}
}

// FolderRoom is the bytes free in the file system holding dir.
func FolderRoom(dir string) func() uint64 {
	return func() uint64 {
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			return 0
		}
		return st.Bavail * uint64(st.Bsize)
	}
}
