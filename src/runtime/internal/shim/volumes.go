package shim

import (
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/agentclient"
)

// volume is a folder of the node bound into a container: a ConfigMap, Secret, projected token or
// downward API volume, shipped to the VM as one of the container's trees; or an emptyDir, which
// the VM keeps for the pod itself (no source) so that its containers share it.
type volume struct {
	source string
	mount  *agentapi.Mount
}

// emptyDirFolder is the path part kubelet puts a pod's emptyDir volumes under.
const emptyDirFolder = "/volumes/kubernetes.io~empty-dir/"

// systemPaths are what the VM gives every container itself; a bind there from the node is not shipped.
var systemPaths = []string{"/proc", "/dev", "/sys"}

// volumes picks the spec's bind mounts of node folders; isDir tells a folder from a file. Single
// files (/etc/hosts, /etc/resolv.conf, the termination log) are not shipped: the VM has its own.
func volumes(mounts []specs.Mount, isDir func(string) bool) []volume {
	var out []volume
	for _, m := range mounts {
		if !isBind(m) || underSystemPath(m.Destination) || !isDir(m.Source) {
			continue
		}
		readonly := slices.Contains(m.Options, "ro")
		if strings.Contains(m.Source, emptyDirFolder) {
			out = append(out, volume{mount: &agentapi.Mount{Destination: m.Destination, PodVolume: path.Base(m.Source), Readonly: readonly}})
			continue
		}
		tree := fmt.Sprintf("volume-%d", len(out))
		out = append(out, volume{source: m.Source, mount: &agentapi.Mount{Destination: m.Destination, Tree: tree, Readonly: readonly}})
	}
	return out
}

func isBind(m specs.Mount) bool {
	return m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
}

func underSystemPath(destination string) bool {
	clean := path.Clean(destination)
	return slices.ContainsFunc(systemPaths, func(p string) bool { return clean == p || strings.HasPrefix(clean, p+"/") })
}

func isDir(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// shipVolumes sends each volume's folder (the pod's own volumes have none) to the agent and
// answers the mounts that bind them.
func shipVolumes(ctx context.Context, agent *agentclient.Client, containerID string, vols []volume) ([]*agentapi.Mount, error) {
	mounts := make([]*agentapi.Mount, 0, len(vols))
	for _, v := range vols {
		if v.source == "" {
			mounts = append(mounts, v.mount)
			continue
		}
		tree := agentclient.TarDir(v.source)
		_, err := agent.PutTree(ctx, containerID, v.mount.GetTree(), tree)
		_ = tree.Close()
		if err != nil {
			return nil, fmt.Errorf("sending %s (for %s) to the VM: %w", v.source, v.mount.GetDestination(), err)
		}
		mounts = append(mounts, v.mount)
	}
	return mounts, nil
}
