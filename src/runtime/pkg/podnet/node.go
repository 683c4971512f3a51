package podnet

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// vniTries bounds the search for a VNI no other device of the node uses.
const vniTries = 256

// Attach connects the pod's network namespace at netnsPath to the VM at vmIP: a vxlan device
// towards the VM in the pod's netns, made in the caller's (the node's) namespace so that its
// tunnel runs there, and tc redirects between it and the pod's interface both ways. It answers
// what the VM needs. A second call for the same sandbox finds the device and answers the same.
func Attach(netnsPath, sandboxID, vmIP string) (Network, error) {
	vm := net.ParseIP(vmIP)
	if vm == nil {
		return Network{}, fmt.Errorf("vm ip %q is not an IP address", vmIP)
	}
	node, err := RouteHandle(netns.None())
	if err != nil {
		return Network{}, err
	}
	defer node.Close()
	podNS, err := netns.GetFromPath(netnsPath)
	if err != nil {
		return Network{}, fmt.Errorf("opening the pod netns %s: %w", netnsPath, err)
	}
	defer podNS.Close()
	pod, err := RouteHandle(podNS)
	if err != nil {
		return Network{}, fmt.Errorf("entering the pod netns %s: %w", netnsPath, err)
	}
	defer pod.Close()

	podLink, err := podInterface(pod)
	if err != nil {
		return Network{}, err
	}
	addresses, err := podAddresses(pod, podLink)
	if err != nil {
		return Network{}, err
	}
	routes, err := podRoutes(pod, podLink)
	if err != nil {
		return Network{}, err
	}
	nodeIP, err := sourceTowards(node, vm)
	if err != nil {
		return Network{}, err
	}

	var undo undoList
	device, err := ensureDevice(node, pod, podNS, DeviceName(sandboxID), sandboxID, vm, &undo)
	if err == nil {
		err = wire(pod, podLink, device, &undo)
	}
	if err != nil {
		return Network{}, errors.Join(err, undo.run())
	}
	return Network{
		Interface: podLink.Attrs().Name, MAC: podLink.Attrs().HardwareAddr.String(), MTU: podLink.Attrs().MTU,
		Addresses: addresses, Routes: routes,
		VNI: uint32(device.VxlanId), Port: device.Port, NodeIP: nodeIP.String(), VMIP: vm.String(),
	}, nil
}

// Detach removes podnet's vxlan devices and tc filters from the pod's netns, and the ingress
// qdiscs that hold no other filter. A netns that no longer exists is already detached.
func Detach(netnsPath string) error {
	podNS, err := netns.GetFromPath(netnsPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening the pod netns %s: %w", netnsPath, err)
	}
	defer podNS.Close()
	pod, err := RouteHandle(podNS)
	if err != nil {
		return fmt.Errorf("entering the pod netns %s: %w", netnsPath, err)
	}
	defer pod.Close()
	links, err := pod.LinkList()
	if err != nil {
		return err
	}
	var errs []error
	for _, link := range links {
		if !isOurs(link) {
			errs = append(errs, unwire(pod, link))
		}
	}
	for _, link := range links {
		if isOurs(link) {
			errs = append(errs, pod.LinkDel(link))
		}
	}
	return errors.Join(errs...)
}

func isOurs(link netlink.Link) bool {
	_, vxlan := link.(*netlink.Vxlan)
	return vxlan && strings.HasPrefix(link.Attrs().Name, devicePrefix)
}

// podInterface is the one interface CNI gave the pod, besides lo and podnet's device.
func podInterface(pod *netlink.Handle) (netlink.Link, error) {
	links, err := pod.LinkList()
	if err != nil {
		return nil, err
	}
	var found []netlink.Link
	var names []string
	for _, link := range links {
		if link.Attrs().Flags&net.FlagLoopback == 0 && !isOurs(link) {
			found = append(found, link)
			names = append(names, link.Attrs().Name)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("the pod netns has %d interfaces besides lo [%s]: podnet connects exactly one (CNI's eth0)", len(found), strings.Join(names, " "))
	}
	if len(found[0].Attrs().HardwareAddr) != 6 {
		return nil, fmt.Errorf("the pod interface %s is not an Ethernet interface", found[0].Attrs().Name)
	}
	return found[0], nil
}

// podAddresses are the pod interface's global addresses as CIDRs; at least one must be IPv4.
func podAddresses(pod *netlink.Handle, link netlink.Link) ([]string, error) {
	addrs, err := pod.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	var out []string
	ipv4 := false
	for _, addr := range addrs {
		if addr.Scope != unix.RT_SCOPE_UNIVERSE {
			continue
		}
		ipv4 = ipv4 || addr.IP.To4() != nil
		out = append(out, addr.IPNet.String())
	}
	if !ipv4 {
		return nil, fmt.Errorf("the pod interface %s has no IPv4 address (CNI has not set it up?)", link.Attrs().Name)
	}
	return out, nil
}

// podRoutes are the routes through the pod interface in the main table that CNI (or anyone but
// the kernel, whose own routes follow from the addresses) added.
func podRoutes(pod *netlink.Handle, link netlink.Link) ([]Route, error) {
	filter := &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_MAIN}
	routes, err := pod.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, err
	}
	out := []Route{}
	for _, route := range routes {
		if route.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		out = append(out, routeOf(route))
	}
	return out, nil
}

func routeOf(route netlink.Route) Route {
	destination := "0.0.0.0/0"
	if route.Family == netlink.FAMILY_V6 {
		destination = "::/0"
	}
	if route.Dst != nil {
		destination = route.Dst.String()
	}
	out := Route{Destination: destination}
	if route.Gw != nil {
		out.Gateway = route.Gw.String()
	}
	return out
}

// sourceTowards is the node's source address for packets to the VM.
func sourceTowards(node *netlink.Handle, vm net.IP) (net.IP, error) {
	routes, err := node.RouteGet(vm)
	if err != nil {
		return nil, fmt.Errorf("no route from the node to the VM %s: %w", vm, err)
	}
	if len(routes) == 0 || routes[0].Src == nil {
		return nil, fmt.Errorf("the node's route to the VM %s gives no source address", vm)
	}
	return routes[0].Src, nil
}

// ensureDevice finds the sandbox's vxlan device in the pod netns or makes it there: made through
// the node's handle, its tunnel socket and its VNI belong to the node's namespace, where a VNI
// another pod uses is refused (EEXIST) and the next one is tried. An EEXIST may also be a
// concurrent Attach that made the device first: each try looks for it again.
func ensureDevice(node, pod *netlink.Handle, podNS netns.NsHandle, name, sandboxID string, vm net.IP, undo *undoList) (*netlink.Vxlan, error) {
	vni := firstVNI(sandboxID)
	for range vniTries {
		existing, err := vxlanByName(pod, name)
		if err != nil || existing != nil {
			if existing != nil && !existing.Group.Equal(vm) {
				return nil, fmt.Errorf("the pod netns is attached to the VM %s already, not %s (detach it first)", existing.Group, vm)
			}
			return existing, err
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		attrs.Namespace = netlink.NsFd(podNS)
		err = node.LinkAdd(&netlink.Vxlan{LinkAttrs: attrs, VxlanId: int(vni), Group: vm, Port: VXLANPort})
		if errors.Is(err, unix.EEXIST) {
			vni = nextVNI(vni)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("creating the vxlan device %s: %w", name, err)
		}
		device, err := vxlanByName(pod, name)
		if device == nil && err == nil {
			err = fmt.Errorf("the vxlan device %s did not appear in the pod netns", name)
		}
		if err != nil {
			return nil, err
		}
		undo.add(func() error { return pod.LinkDel(device) })
		return device, nil
	}
	return nil, fmt.Errorf("no free VNI among %d tried from %d: the node has that many vxlan devices?", vniTries, firstVNI(sandboxID))
}

// vxlanByName is the vxlan device of that name, or nil when there is none.
func vxlanByName(h *netlink.Handle, name string) (*netlink.Vxlan, error) {
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	device, ok := link.(*netlink.Vxlan)
	if !ok {
		return nil, fmt.Errorf("%s in the pod netns is a %s device, not podnet's vxlan", name, link.Type())
	}
	return device, nil
}

// wire gives the device the pod interface's MTU, brings it up and redirects every frame that
// arrives on either of them out of the other.
func wire(pod *netlink.Handle, podLink netlink.Link, device *netlink.Vxlan, undo *undoList) error {
	if err := pod.LinkSetMTU(device, podLink.Attrs().MTU); err != nil {
		return fmt.Errorf("setting the mtu of %s: %w", device.Name, err)
	}
	if err := pod.LinkSetUp(device); err != nil {
		return fmt.Errorf("bringing up %s: %w", device.Name, err)
	}
	if err := redirect(pod, podLink, device, undo); err != nil {
		return err
	}
	return redirect(pod, device, podLink, undo)
}

// undoList is what a failed call deletes again, last made first.
type undoList []func() error

func (u *undoList) add(step func() error) { *u = append(*u, step) }

func (u *undoList) run() error {
	var errs []error
	for i := len(*u) - 1; i >= 0; i-- {
		errs = append(errs, (*u)[i]())
	}
	return errors.Join(errs...)
}
