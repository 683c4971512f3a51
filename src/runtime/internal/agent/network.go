package agent

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"google.golang.org/protobuf/proto"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/podnet"
)

// PodNetwork is the pod's network namespace in the VM, which SetupNetwork makes once.
type PodNetwork struct {
	// Path is where the namespace is bind-mounted, e.g. /run/netns/pod.
	Path string

	mu sync.Mutex
	// done is the request that set the network up, nil before.
	done *agentapi.SetupNetworkRequest
}

// Netns is the namespace containers join, or "" (the VM's own) before SetupNetwork.
func (p *PodNetwork) Netns() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return ""
	}
	return p.Path
}

// Setup gives the pod its network as the request says; the same request again succeeds (a retry
// after a lost answer), another one fails once a network is set up.
func (p *PodNetwork) Setup(req *agentapi.SetupNetworkRequest) (podnet.Network, error) {
	network := networkOf(req)
	if err := network.ValidateVM(); err != nil {
		return network, invalid("%v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		if proto.Equal(p.done, req) {
			return network, nil
		}
		return network, precondition("the pod network is set up already (interface %s, vni %d, node %s): a different one cannot replace it",
			p.done.GetInterface(), p.done.GetVni(), p.done.GetNodeIp())
	}
	if err := setupPodNetns(p.Path, network); err != nil {
		return network, internal(err, "setting up the pod network")
	}
	p.done = proto.CloneOf(req)
	return network, nil
}

func networkOf(req *agentapi.SetupNetworkRequest) podnet.Network {
	routes := make([]podnet.Route, 0, len(req.GetRoutes()))
	for _, route := range req.GetRoutes() {
		routes = append(routes, podnet.Route{Destination: route.GetDestination(), Gateway: route.GetGateway()})
	}
	return podnet.Network{
		Interface: req.GetInterface(), MAC: req.GetMac(), MTU: int(req.GetMtu()), Addresses: req.GetAddresses(), Routes: routes,
		VNI: req.GetVni(), Port: int(req.GetPort()), NodeIP: req.GetNodeIp(),
	}
}

// setupPodNetns makes the namespace at path and in it the pod's interface: a vxlan device towards
// the node, made from the VM's namespace (where its tunnel runs), with the pod interface's name,
// MAC, MTU, addresses and routes; and lo. On failure nothing of it stays.
func setupPodNetns(path string, n podnet.Network) (err error) {
	if err := podnet.CreateNetns(path); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, podnet.RemoveNetns(path))
		}
	}()
	podNS, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer podNS.Close()
	vm, err := podnet.RouteHandle(netns.None())
	if err != nil {
		return err
	}
	defer vm.Close()
	pod, err := podnet.RouteHandle(podNS)
	if err != nil {
		return err
	}
	defer pod.Close()

	mac, _ := net.ParseMAC(n.MAC)
	attrs := netlink.NewLinkAttrs()
	// Made under a name of its own: some kernels (the pod VM's 6.12) look a new link's name up in
	// the namespace that asks, where the VM's NIC may already be called eth0 too.
	transient := fmt.Sprintf("ppvx%d", n.VNI)
	attrs.Name, attrs.MTU, attrs.HardwareAddr, attrs.Namespace = transient, n.MTU, mac, netlink.NsFd(podNS)
	if err := vm.LinkAdd(&netlink.Vxlan{LinkAttrs: attrs, VxlanId: int(n.VNI), Group: net.ParseIP(n.NodeIP), Port: n.Port}); err != nil {
		return fmt.Errorf("creating the vxlan device towards %s (vni %d): %w", n.NodeIP, n.VNI, err)
	}
	link, err := pod.LinkByName(transient)
	if err != nil {
		return err
	}
	// The namespace may outlive this call a while (teardown is asynchronous), and with it the VNI.
	defer func() {
		if err != nil {
			err = errors.Join(err, pod.LinkDel(link))
		}
	}()
	if err := pod.LinkSetName(link, n.Interface); err != nil {
		return fmt.Errorf("naming the pod interface %s: %w", n.Interface, err)
	}
	return configure(pod, link, n)
}

// configure gives the pod interface its addresses and routes and brings it and lo up.
func configure(pod *netlink.Handle, link netlink.Link, n podnet.Network) error {
	var prefixes []*net.IPNet
	for _, cidr := range n.Addresses {
		addr, err := netlink.ParseAddr(cidr)
		if err != nil {
			return err
		}
		if err := pod.AddrAdd(link, addr); err != nil {
			return fmt.Errorf("adding the address %s: %w", cidr, err)
		}
		prefixes = append(prefixes, addr.IPNet)
	}
	lo, err := pod.LinkByName("lo")
	if err != nil {
		return err
	}
	for _, up := range []netlink.Link{lo, link} {
		if err := pod.LinkSetUp(up); err != nil {
			return fmt.Errorf("bringing up %s: %w", up.Attrs().Name, err)
		}
	}
	for _, route := range routesInOrder(n.Routes) {
		r, err := routeOf(route, link.Attrs().Index, prefixes)
		if err != nil {
			return err
		}
		if err := pod.RouteReplace(r); err != nil {
			return fmt.Errorf("adding the route to %s via %q: %w", route.Destination, route.Gateway, err)
		}
	}
	return nil
}

// routesInOrder puts routes on the link before routes through a gateway, which may need them.
func routesInOrder(routes []podnet.Route) []podnet.Route {
	out := slices.Clone(routes)
	slices.SortStableFunc(out, func(a, b podnet.Route) int {
		switch {
		case a.Gateway == "" && b.Gateway != "":
			return -1
		case a.Gateway != "" && b.Gateway == "":
			return 1
		}
		return 0
	})
	return out
}

// routeOf is the netlink route for a pod route on the link; a gateway outside the pod's prefixes
// (as some CNIs give, e.g. 169.254.1.1) is on the link all the same.
func routeOf(route podnet.Route, linkIndex int, prefixes []*net.IPNet) (*netlink.Route, error) {
	_, dst, err := net.ParseCIDR(route.Destination)
	if err != nil {
		return nil, err
	}
	r := &netlink.Route{LinkIndex: linkIndex, Dst: dst, Scope: netlink.SCOPE_LINK}
	if route.Gateway == "" {
		return r, nil
	}
	r.Gw, r.Scope = net.ParseIP(route.Gateway), netlink.SCOPE_UNIVERSE
	if !slices.ContainsFunc(prefixes, func(p *net.IPNet) bool { return p.Contains(r.Gw) }) {
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	return r, nil
}
