package podnet_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"peerpods.io/runtime/internal/netnstest"
	"peerpods.io/runtime/pkg/podnet"
)

var ingress = netlink.MakeHandle(0xffff, 0)

const (
	nodeIP = "192.168.77.1"
	vmIP   = "192.168.77.2"
)

// nodeWithPod is a namespace playing the node, with an uplink to a VM address, and a pod netns
// as CNI's bridge plugin leaves it: eth0 with an address and a default route via the node.
func nodeWithPod(t *testing.T) (node, pod string) {
	node, pod = netnstest.New(t, "node"), netnstest.New(t, "pod")
	vm := netnstest.New(t, "vm")
	netnstest.Veth(t, node, "uplink", nodeIP+"/24", vm, "eth0", vmIP+"/24")
	netnstest.Veth(t, node, "gw", "10.88.0.1/16", pod, "eth0", "10.88.0.5/16")
	netnstest.DefaultRoute(t, pod, "10.88.0.1")
	return node, pod
}

func attach(t *testing.T, node, pod, sandbox, vm string) (podnet.Network, error) {
	t.Helper()
	var network podnet.Network
	var err error
	netnstest.In(t, node, func() { network, err = podnet.Attach(pod, sandbox, vm) })
	return network, err
}

func TestAttachConnectsThePodInterfaceToAVXLANTowardsTheVM(t *testing.T) {
	node, pod := nodeWithPod(t)
	network, err := attach(t, node, pod, "sandbox-1", vmIP)
	if err != nil {
		t.Fatal(err)
	}
	h := netnstest.Handle(t, pod)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	want := podnet.Network{
		Interface: "eth0", MAC: eth0.Attrs().HardwareAddr.String(), MTU: 1500, Addresses: []string{"10.88.0.5/16"},
		Routes: []podnet.Route{{Destination: "0.0.0.0/0", Gateway: "10.88.0.1"}},
		VNI:    network.VNI, Port: 4789, NodeIP: nodeIP, VMIP: vmIP,
	}
	if !reflect.DeepEqual(network, want) {
		t.Errorf("network\n%+v\nwant\n%+v", network, want)
	}
	data, _ := json.Marshal(network)
	wantJSON := fmt.Sprintf(`{"interface":"eth0","mac":%q,"mtu":1500,"addresses":["10.88.0.5/16"],"routes":[{"destination":"0.0.0.0/0","gateway":"10.88.0.1"}],"vni":%d,"port":4789,"nodeIp":%q,"vmIp":%q}`,
		want.MAC, network.VNI, nodeIP, vmIP)
	if string(data) != wantJSON {
		t.Errorf("json\n%s\nwant\n%s", data, wantJSON)
	}

	device := vxlan(t, h, podnet.DeviceName("sandbox-1"))
	if !device.Group.Equal(netIP(vmIP)) || uint32(device.VxlanId) != network.VNI || device.Port != 4789 || device.MTU != 1500 || device.OperState == netlink.OperDown {
		t.Errorf("vxlan device %+v: want remote %s, vni %d, port 4789, mtu 1500, up", device, vmIP, network.VNI)
	}
	// Its tunnel (and so its VNI) is the node's: the node cannot have another device with that VNI.
	err = netnstest.Handle(t, node).LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "probe"}, VxlanId: int(network.VNI), Group: netIP(vmIP), Port: 4789})
	if !errors.Is(err, unix.EEXIST) {
		t.Errorf("a second device with VNI %d on the node: got %v, want EEXIST", network.VNI, err)
	}
	expectRedirect(t, h, eth0, device)
	expectRedirect(t, h, device, eth0)

	again, err := attach(t, node, pod, "sandbox-1", vmIP)
	if err != nil || !reflect.DeepEqual(again, network) {
		t.Errorf("attach again: %+v, %v; want the same network", again, err)
	}
	if _, err := attach(t, node, pod, "sandbox-1", "192.168.77.3"); err == nil || !strings.Contains(err.Error(), "attached to the VM "+vmIP+" already") {
		t.Errorf("attach towards another VM: got %v, want a refusal", err)
	}

	if err := podnet.Detach(pod); err != nil {
		t.Fatal(err)
	}
	expectDetached(t, h)
	if err := podnet.Detach(pod); err != nil {
		t.Errorf("detach again: %v", err)
	}
	if err := podnet.Detach(filepath.Join(t.TempDir(), "gone")); err != nil {
		t.Errorf("detach of a netns that is gone: %v", err)
	}
}

func TestAttachTakesTheNextVNIWhenTheNodeUsesItsOwn(t *testing.T) {
	node, pod := nodeWithPod(t)
	first, err := attach(t, node, pod, "sandbox-1", vmIP)
	if err != nil {
		t.Fatal(err)
	}
	other := netnstest.New(t, "other-pod")
	netnstest.Veth(t, node, "gw2", "", other, "eth0", "10.89.0.5/16")
	second, err := attach(t, node, other, "sandbox-1", vmIP)
	if err != nil {
		t.Fatal(err)
	}
	if second.VNI != first.VNI%podnet.MaxVNI+1 {
		t.Errorf("VNI %d while %d is taken: want the next one", second.VNI, first.VNI)
	}
}

func TestAttachRefusesAPodItCannotConnect(t *testing.T) {
	node, pod := nodeWithPod(t)
	h := netnstest.Handle(t, pod)
	netnstest.Veth(t, node, "gw2", "", pod, "extra", "")
	if _, err := attach(t, node, pod, "sandbox-1", vmIP); err == nil || !strings.Contains(err.Error(), "2 interfaces besides lo [eth0 extra]") {
		t.Errorf("two interfaces: got %v", err)
	}
	expectDetached(t, h)

	bare := netnstest.New(t, "bare")
	netnstest.Veth(t, node, "gw3", "", bare, "eth0", "")
	if _, err := attach(t, node, bare, "sandbox-1", vmIP); err == nil || !strings.Contains(err.Error(), "no IPv4 address") {
		t.Errorf("no address: got %v", err)
	}
	if _, err := attach(t, node, pod, "sandbox-1", "not-an-ip"); err == nil || !strings.Contains(err.Error(), "not an IP address") {
		t.Errorf("bad vm ip: got %v", err)
	}
}

func TestAttachLeavesNothingWhenItFails(t *testing.T) {
	node, pod := nodeWithPod(t)
	h := netnstest.Handle(t, pod)
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	// Someone else's clsact qdisc leaves no room for an ingress qdisc: Attach fails after making its device.
	clsact := &netlink.GenericQdisc{QdiscType: "clsact", QdiscAttrs: netlink.QdiscAttrs{LinkIndex: eth0.Attrs().Index, Parent: netlink.HANDLE_CLSACT, Handle: ingress}}
	if err := h.QdiscAdd(clsact); err != nil {
		t.Fatal(err)
	}
	if _, err := attach(t, node, pod, "sandbox-1", vmIP); err == nil || !strings.Contains(err.Error(), "eth0 has a clsact qdisc") {
		t.Fatalf("attach: got %v, want a refusal to share eth0's clsact qdisc", err)
	}
	expectDetached(t, h)
}

func vxlan(t *testing.T, h *netlink.Handle, name string) *netlink.Vxlan {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("the vxlan device %s: %v", name, err)
	}
	device, ok := link.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("%s is a %s device", name, link.Type())
	}
	return device
}

// expectRedirect checks that from's ingress holds one filter: match all, redirect out of to.
func expectRedirect(t *testing.T, h *netlink.Handle, from, to netlink.Link) {
	t.Helper()
	filters, err := h.FilterList(from, ingress)
	if err != nil {
		t.Fatal(err)
	}
	if len(filters) != 1 {
		t.Fatalf("%s has %d ingress filters, want 1", from.Attrs().Name, len(filters))
	}
	u32, ok := filters[0].(*netlink.U32)
	if !ok || u32.Protocol != unix.ETH_P_ALL || len(u32.Actions) != 1 {
		t.Fatalf("%s's ingress filter %+v: want u32 for every protocol with one action", from.Attrs().Name, filters[0])
	}
	if mirred, ok := u32.Actions[0].(*netlink.MirredAction); !ok || mirred.MirredAction != netlink.TCA_EGRESS_REDIR || mirred.Ifindex != to.Attrs().Index {
		t.Errorf("%s's ingress action %+v: want a redirect out of %s", from.Attrs().Name, u32.Actions[0], to.Attrs().Name)
	}
}

// expectDetached checks that the pod netns holds no vxlan device and no ingress qdisc.
func expectDetached(t *testing.T, h *netlink.Handle) {
	t.Helper()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	for _, link := range links {
		if link.Type() == "vxlan" {
			t.Errorf("the vxlan device %s is still there", link.Attrs().Name)
		}
		qdiscs, err := h.QdiscList(link)
		if err != nil {
			t.Fatal(err)
		}
		for _, qdisc := range qdiscs {
			if qdisc.Type() == "ingress" {
				t.Errorf("%s still has an ingress qdisc", link.Attrs().Name)
			}
		}
	}
}

func netIP(s string) net.IP { return net.ParseIP(s) }
