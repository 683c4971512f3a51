// Package podnet connects a peer pod's network namespace on the node to its VM with a VXLAN
// tunnel (cloud-api-adaptor's model): the pod's IP lives in the VM. On the node, a vxlan device
// towards the VM sits in the pod's netns, and tc moves every frame between it and the pod's
// interface; in the VM, a vxlan device towards the node takes the pod interface's name, MAC and
// addresses in a netns of its own, where the pod's containers run.
package podnet

import (
	"fmt"
	"hash/fnv"
	"net"
	"strings"
)

// VXLANPort is the IANA VXLAN port the tunnel uses at both ends.
const VXLANPort = 4789

// MaxVNI is the largest VXLAN network identifier (24 bits); 0 is not used.
const MaxVNI = 1<<24 - 1

// MTU bounds a pod interface may have (576: the IPv4 minimum datagram every host must take).
const (
	MinMTU = 576
	MaxMTU = 65535
)

// devicePrefix starts the name of every vxlan device podnet makes on the node, so Detach finds them.
const devicePrefix = "ppvx"

// Route is one of the pod interface's routes.
type Route struct {
	// Destination is a CIDR, "0.0.0.0/0" for the default route.
	Destination string `json:"destination"`
	Gateway     string `json:"gateway,omitempty"`
}

// Network is what the VM needs to give the pod its network: the pod interface as CNI set it up on
// the node, and the tunnel between the node and the VM.
type Network struct {
	// Interface is the pod's interface name on the node (e.g. eth0); the VM gives its end that name.
	Interface string `json:"interface"`
	MAC       string `json:"mac"`
	MTU       int    `json:"mtu"`
	// Addresses are CIDRs as CNI set them, e.g. 10.88.0.5/16.
	Addresses []string `json:"addresses"`
	Routes    []Route  `json:"routes"`
	VNI       uint32   `json:"vni"`
	Port      int      `json:"port"`
	// NodeIP is the node's source address towards the VM: the VM's tunnel remote.
	NodeIP string `json:"nodeIp"`
	VMIP   string `json:"vmIp"`
}

// DeviceName is the node's vxlan device for a sandbox: podnet's prefix and a hash of the sandbox
// id, within the kernel's 15 characters.
func DeviceName(sandboxID string) string {
	return fmt.Sprintf("%s%08x", devicePrefix, hash(sandboxID))
}

// firstVNI is where the search for a free VNI starts for a sandbox, in [1, MaxVNI].
func firstVNI(sandboxID string) uint32 {
	return hash(sandboxID)%MaxVNI + 1
}

// nextVNI is the VNI tried after vni, wrapping within [1, MaxVNI].
func nextVNI(vni uint32) uint32 {
	return vni%MaxVNI + 1
}

func hash(s string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(s))
	return h.Sum32()
}

// ValidateVM checks what the VM side uses of a Network (VMIP is the node's business).
func (n Network) ValidateVM() error {
	if n.Interface == "" || len(n.Interface) > 15 || strings.ContainsAny(n.Interface, "/ \t\n:") || n.Interface == "." || n.Interface == ".." {
		return fmt.Errorf("interface name %q must be 1 to 15 characters without '/', ':' or spaces", n.Interface)
	}
	if mac, err := net.ParseMAC(n.MAC); err != nil || len(mac) != 6 || mac[0]&1 == 1 {
		return fmt.Errorf("mac %q must be a unicast Ethernet address like 0a:58:0a:58:00:05", n.MAC)
	}
	if n.MTU < MinMTU || n.MTU > MaxMTU {
		return fmt.Errorf("mtu %d must be between %d and %d", n.MTU, MinMTU, MaxMTU)
	}
	if n.VNI == 0 || n.VNI > MaxVNI {
		return fmt.Errorf("vni %d must be between 1 and %d", n.VNI, MaxVNI)
	}
	if n.Port < 1 || n.Port > 65535 {
		return fmt.Errorf("port %d must be between 1 and 65535", n.Port)
	}
	if ip := net.ParseIP(n.NodeIP); ip == nil || ip.IsUnspecified() {
		return fmt.Errorf("node ip %q must be an IP address", n.NodeIP)
	}
	if len(n.Addresses) == 0 {
		return fmt.Errorf("the pod interface needs at least one address")
	}
	for _, address := range n.Addresses {
		if _, _, err := net.ParseCIDR(address); err != nil {
			return fmt.Errorf("address %q must be a CIDR like 10.88.0.5/16", address)
		}
	}
	for _, route := range n.Routes {
		destination, _, err := net.ParseCIDR(route.Destination)
		if err != nil {
			return fmt.Errorf("route destination %q must be a CIDR like 0.0.0.0/0", route.Destination)
		}
		if route.Gateway == "" {
			continue
		}
		gateway := net.ParseIP(route.Gateway)
		if gateway == nil {
			return fmt.Errorf("route to %s: gateway %q must be an IP address", route.Destination, route.Gateway)
		}
		if (gateway.To4() == nil) != (destination.To4() == nil) {
			return fmt.Errorf("route to %s: gateway %s is of another address family", route.Destination, route.Gateway)
		}
	}
	return nil
}
