// containerd-shim-peerpods-v2 is the containerd runtime io.containerd.peerpods.v2: one shim per pod
// sandbox, which gets the pod's VM from the node's hypervisor part and runs the pod's containers
// there through peerpods-agent.
package main

import (
	"context"

	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/containerd/v2/pkg/shutdown"
	"github.com/containerd/containerd/v2/plugins"
	"github.com/containerd/plugin"
	"github.com/containerd/plugin/registry"
	peerpods "peerpods.io/runtime/internal/shim"
)

var version = "dev"

func init() {
	registry.Register(&plugin.Registration{
		Type:     plugins.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugins.EventPlugin, plugins.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (any, error) {
			publisher, err := ic.GetByID(plugins.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			sd, err := ic.GetByID(plugins.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			return peerpods.NewService(ic.Context, publisher.(shim.Publisher), sd.(shutdown.Service)), nil
		},
	})
}

func main() {
	shim.RunShim(context.Background(), peerpods.Manager{Version: version})
}
