package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/vishvananda/netlink"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"peerpods.io/runtime/internal/netnstest"
	"peerpods.io/runtime/pkg/agentapi"
	"peerpods.io/runtime/pkg/podnet"
)

func validNetworkRequest() *agentapi.SetupNetworkRequest {
	return &agentapi.SetupNetworkRequest{
		Interface: "eth0", Mac: "0a:58:0a:58:00:05", Mtu: 1500, Addresses: []string{"10.88.0.5/16"},
		Routes: []*agentapi.Route{{Destination: "0.0.0.0/0", Gateway: "10.88.0.1"}}, Vni: 42, Port: 4789, NodeIp: "192.168.77.1",
	}
}

func TestSetupNetworkRefusesBadInputAndCountsIt(t *testing.T) {
	f := startAgent(t)
	cases := []struct {
		change   func(*agentapi.SetupNetworkRequest)
		mentions string
	}{
		{func(r *agentapi.SetupNetworkRequest) { r.Mac = "zz" }, `mac "zz"`},
		{func(r *agentapi.SetupNetworkRequest) { r.Mtu = 100 }, "mtu 100 must be between 576 and 65535"},
		{func(r *agentapi.SetupNetworkRequest) { r.Vni = 0 }, "vni 0"},
		{func(r *agentapi.SetupNetworkRequest) { r.Vni = 1 << 24 }, "vni 16777216"},
		{func(r *agentapi.SetupNetworkRequest) { r.Addresses = []string{"10.88.0.5"} }, `address "10.88.0.5" must be a CIDR`},
		{func(r *agentapi.SetupNetworkRequest) { r.Routes[0].Destination = "default" }, `route destination "default"`},
	}
	for _, c := range cases {
		req := validNetworkRequest()
		c.change(req)
		_, err := f.client.SetupNetwork(context.Background(), req)
		wantCode(t, c.mentions, err, codes.InvalidArgument, c.mentions)
	}
	health, err := f.client.Health(context.Background(), &agentapi.HealthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := health.GetFailedCalls()["SetupNetwork"]; got != uint64(len(cases)) {
		t.Errorf("failed SetupNetwork calls counted: %d, want %d", got, len(cases))
	}
	if f.server.Network.Netns() != "" {
		t.Errorf("containers would join %q after refused setups, want the VM's network", f.server.Network.Netns())
	}
}

func TestContainersJoinThePodNetnsOnceItIsSetUp(t *testing.T) {
	f := startAgent(t)
	f.create(t, "before", "true")
	f.server.Network.done = validNetworkRequest()
	f.create(t, "after", "true")
	for id, want := range map[string]string{"before": "", "after": f.server.Network.Path} {
		data, err := os.ReadFile(filepath.Join(f.server.Config.BundleDir, id, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var spec specs.Spec
		if err := json.Unmarshal(data, &spec); err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(spec.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == specs.NetworkNamespace })
		switch {
		case want == "" && i >= 0:
			t.Errorf("%s: network namespace %+v, want the VM's", id, spec.Linux.Namespaces[i])
		case want != "" && (i < 0 || spec.Linux.Namespaces[i].Path != want):
			t.Errorf("%s: namespaces %+v, want the network one at %s", id, spec.Linux.Namespaces, want)
		}
	}
}

func TestRoutesOnTheLinkComeFirst(t *testing.T) {
	routes := []podnet.Route{{Destination: "0.0.0.0/0", Gateway: "169.254.1.1"}, {Destination: "169.254.1.1/32"}, {Destination: "10.0.0.0/8", Gateway: "169.254.1.1"}}
	got := routesInOrder(routes)
	want := []podnet.Route{routes[1], routes[0], routes[2]}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	_, pod, _ := net.ParseCIDR("10.88.0.5/16")
	if r, _ := routeOf(routes[0], 3, []*net.IPNet{pod}); r.Flags&int(netlink.FLAG_ONLINK) == 0 {
		t.Errorf("a gateway outside the pod's prefixes must be on the link: %+v", r)
	}
	if r, _ := routeOf(podnet.Route{Destination: "0.0.0.0/0", Gateway: "10.88.0.1"}, 3, []*net.IPNet{pod}); r.Flags != 0 || !r.Gw.Equal(net.ParseIP("10.88.0.1")) {
		t.Errorf("a gateway in the pod's prefix needs no flag: %+v", r)
	}
}

// TestPodTrafficCrossesTheTunnel builds a node (with the pod's netns as CNI's bridge leaves it)
// and a VM, attaches the pod on the node, sets its network up in the VM as the agent does, and
// has the node talk TCP to the pod's IP, which now lives in the VM.
func TestPodTrafficCrossesTheTunnel(t *testing.T) {
	node, pod, vm := netnstest.New(t, "node"), netnstest.New(t, "pod"), netnstest.New(t, "vm")
	netnstest.Veth(t, node, "uplink", "192.168.77.1/24", vm, "eth0", "192.168.77.2/24")
	netnstest.Veth(t, node, "gw", "10.88.0.1/16", pod, "eth0", "10.88.0.5/16")
	netnstest.DefaultRoute(t, pod, "10.88.0.1")
	var network podnet.Network
	var err error
	netnstest.In(t, node, func() { network, err = podnet.Attach(pod, "sandbox-1", "192.168.77.2") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := podnet.Detach(pod); err != nil {
			t.Errorf("detach: %v", err)
		}
	})

	podNetwork := &PodNetwork{Path: filepath.Join(t.TempDir(), "netns", "pod")}
	t.Cleanup(func() {
		if err := podnet.RemoveNetns(podNetwork.Path); err != nil {
			t.Errorf("removing the VM's pod netns: %v", err)
		}
	})
	req := requestOf(network)
	netnstest.In(t, vm, func() { _, err = podNetwork.Setup(req) })
	if err != nil {
		t.Fatal(err)
	}
	if podNetwork.Netns() != podNetwork.Path {
		t.Errorf("containers join %q, want %s", podNetwork.Netns(), podNetwork.Path)
	}
	expectPodInterface(t, podNetwork.Path, network)

	listener := listenIn(t, podNetwork.Path, "10.88.0.5:0")
	go echo(listener)
	payload := bytes.Repeat([]byte("peerpods "), 1000)
	var conn net.Conn
	netnstest.In(t, node, func() { conn, err = net.DialTimeout("tcp", listener.Addr().String(), 10*time.Second) })
	if err != nil {
		t.Fatalf("the node cannot reach the pod's IP in the VM: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(payload))
	if _, err := io.ReadFull(conn, back); err != nil || !bytes.Equal(back, payload) {
		t.Fatalf("echo of %d bytes: %d back, %v", len(payload), len(back), err)
	}

	netnstest.In(t, vm, func() { _, err = podNetwork.Setup(proto.CloneOf(req)) })
	if err != nil {
		t.Errorf("the same setup again (a retry): %v", err)
	}
	other := proto.CloneOf(req)
	other.Vni++
	_, err = podNetwork.Setup(other)
	wantCode(t, "another network", err, codes.FailedPrecondition, "set up already")
}

func TestAFailedSetupLeavesNothingAndCanBeRetried(t *testing.T) {
	vm := netnstest.New(t, "vm")
	podNetwork := &PodNetwork{Path: filepath.Join(t.TempDir(), "netns", "pod")}
	t.Cleanup(func() { _ = podnet.RemoveNetns(podNetwork.Path) })
	req := validNetworkRequest()
	// The same address twice fails once the device is made.
	broken := proto.CloneOf(req)
	broken.Addresses = append(broken.Addresses, broken.Addresses[0])
	var err error
	netnstest.In(t, vm, func() { _, err = podNetwork.Setup(broken) })
	wantCode(t, "a setup that fails", err, codes.Internal, "10.88.0.5/16")
	if _, statErr := os.Stat(podNetwork.Path); !errors.Is(statErr, os.ErrNotExist) || podNetwork.Netns() != "" {
		t.Errorf("after a failed setup: netns file %v, containers join %q; want neither", statErr, podNetwork.Netns())
	}
	// The device is gone at once, not when the netns is freed: its VNI is free for the retry.
	netnstest.In(t, vm, func() { _, err = podNetwork.Setup(req) })
	if err != nil {
		t.Errorf("the retry: %v", err)
	}
}

func requestOf(n podnet.Network) *agentapi.SetupNetworkRequest {
	req := &agentapi.SetupNetworkRequest{
		Interface: n.Interface, Mac: n.MAC, Mtu: uint32(n.MTU), Addresses: n.Addresses, Vni: n.VNI, Port: uint32(n.Port), NodeIp: n.NodeIP,
	}
	for _, route := range n.Routes {
		req.Routes = append(req.Routes, &agentapi.Route{Destination: route.Destination, Gateway: route.Gateway})
	}
	return req
}

// expectPodInterface checks the VM's pod interface: a vxlan device towards the node that looks
// like the pod's interface on the node, with its default route.
func expectPodInterface(t *testing.T, path string, n podnet.Network) {
	t.Helper()
	h := netnstest.Handle(t, path)
	link, err := h.LinkByName(n.Interface)
	if err != nil {
		t.Fatal(err)
	}
	device, ok := link.(*netlink.Vxlan)
	if !ok || uint32(device.VxlanId) != n.VNI || !device.Group.Equal(net.ParseIP(n.NodeIP)) || device.HardwareAddr.String() != n.MAC || device.MTU != n.MTU {
		t.Errorf("the VM's pod interface %+v: want a vxlan to %s, vni %d, mac %s, mtu %d", link, n.NodeIP, n.VNI, n.MAC, n.MTU)
	}
	routes, err := h.RouteList(link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(routes, func(r netlink.Route) bool {
		return (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.Equal(net.ParseIP("10.88.0.1"))
	}) {
		t.Errorf("routes %v: want the default via 10.88.0.1", routes)
	}
}

func listenIn(t *testing.T, path, address string) net.Listener {
	t.Helper()
	var listener net.Listener
	var err error
	netnstest.In(t, path, func() { listener, err = net.Listen("tcp", address) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close() })
	return listener
}

func echo(listener net.Listener) {
	for {
		conn, err := listener.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		go func() {
			defer conn.Close()
			_, _ = io.Copy(conn, conn)
		}()
	}
}
