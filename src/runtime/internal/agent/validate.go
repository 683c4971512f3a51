package agent

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"peerpods.io/runtime/pkg/agentapi"
)

// RootfsTree is the tree a container's root filesystem is uploaded as.
const RootfsTree = agentapi.RootfsTreeName

var (
	// runc's own rule for container ids, bounded so that bundle and socket paths stay short.
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$`)
	treePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
)

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func validateContainerID(id string) error {
	if !idPattern.MatchString(id) {
		return invalid("container id %q must match %s", id, idPattern)
	}
	return nil
}

func validateExecID(id string) error {
	if !idPattern.MatchString(id) {
		return invalid("exec id %q must match %s", id, idPattern)
	}
	return nil
}

func validateTreeName(name string) error {
	if !treePattern.MatchString(name) {
		return invalid("tree name %q must match %s", name, treePattern)
	}
	return nil
}

// validateProcess checks the fields runc would otherwise reject with a less clear message.
func validateProcess(p *agentapi.Process) error {
	if p == nil || len(p.GetArgs()) == 0 || p.GetArgs()[0] == "" {
		return invalid("process needs args (the program and its arguments)")
	}
	if cwd := p.GetCwd(); cwd != "" && !path.IsAbs(cwd) {
		return invalid("process cwd %q must be an absolute path", cwd)
	}
	for _, entry := range p.GetEnv() {
		if name, _, ok := strings.Cut(entry, "="); !ok || name == "" {
			return invalid("env entry %q must be NAME=value", entry)
		}
	}
	if caps := p.GetCapabilities(); caps != nil {
		for _, set := range [][]string{caps.GetBounding(), caps.GetEffective(), caps.GetPermitted(), caps.GetInheritable(), caps.GetAmbient()} {
			for _, name := range set {
				if !knownCapabilities[name] {
					return invalid("unknown capability %q (names are like CAP_CHOWN)", name)
				}
			}
		}
	}
	return nil
}

// validateMounts checks each mount's destination and that it names a tree uploaded for the
// container, or else a well-formed pod volume.
func validateMounts(mounts []*agentapi.Mount, trees map[string]string) error {
	for _, m := range mounts {
		dest := m.GetDestination()
		if !path.IsAbs(dest) || path.Clean(dest) != dest || dest == "/" {
			return invalid("mount destination %q must be a clean absolute path other than /", dest)
		}
		if volume := m.GetPodVolume(); volume != "" {
			if !treePattern.MatchString(volume) || m.GetTree() != "" || m.GetPath() != "" {
				return invalid("mount at %s: pod volume %q must match %s and come without a tree or path", dest, volume, treePattern)
			}
			continue
		}
		if _, ok := trees[m.GetTree()]; !ok || m.GetTree() == RootfsTree {
			return invalid("mount at %s names tree %q, which was not uploaded for this container", dest, m.GetTree())
		}
		if p := m.GetPath(); p != "" && !isLocalPath(p) {
			return invalid("mount at %s: path %q must be relative and stay inside the tree", dest, p)
		}
	}
	return nil
}

// isLocalPath reports whether p is relative and does not climb out of its base.
func isLocalPath(p string) bool {
	clean := path.Clean(p)
	return !path.IsAbs(p) && clean != ".." && !strings.HasPrefix(clean, "../")
}

func validateSignal(signal uint32) error {
	if signal < 1 || signal > 64 {
		return invalid("signal %d is not between 1 and 64", signal)
	}
	return nil
}

func validateSize(rows, columns uint32) error {
	if rows < 1 || rows > 0xffff || columns < 1 || columns > 0xffff {
		return invalid("terminal size %dx%d must be between 1x1 and 65535x65535", rows, columns)
	}
	return nil
}

func notFound(format string, args ...any) error {
	return status.Errorf(codes.NotFound, format, args...)
}

func precondition(format string, args ...any) error {
	return status.Errorf(codes.FailedPrecondition, format, args...)
}

func exhausted(format string, args ...any) error {
	return status.Errorf(codes.ResourceExhausted, format, args...)
}

// internal wraps what went wrong inside the VM (runc, the file system) for the caller.
func internal(err error, format string, args ...any) error {
	return status.Errorf(codes.Internal, "%s: %v", fmt.Sprintf(format, args...), err)
}
