// Package hypervisorapi is Kata's remote-hypervisor API (hypervisor.Hypervisor), which the node's
// hypervisor part serves: the shim asks it for a sandbox's VM and the VM's agent socket.
package hypervisorapi

//go:generate ./generate.sh
