package podnet

import (
	"strings"
	"testing"
)

func TestDeviceNameIsStableAndShort(t *testing.T) {
	a, b := DeviceName("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), DeviceName("other")
	if a != DeviceName("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") || a == b {
		t.Errorf("names %q %q: want one per sandbox, the same each time", a, b)
	}
	if len(a) > 15 || !strings.HasPrefix(a, devicePrefix) {
		t.Errorf("name %q: want %s and at most 15 characters", a, devicePrefix)
	}
}

func TestVNIsStayInRange(t *testing.T) {
	for _, id := range []string{"", "a", "sandbox-1", strings.Repeat("x", 64)} {
		if vni := firstVNI(id); vni < 1 || vni > MaxVNI {
			t.Errorf("first VNI of %q is %d", id, vni)
		}
	}
	if nextVNI(MaxVNI) != 1 || nextVNI(1) != 2 {
		t.Errorf("next of %d is %d, of 1 is %d: want a wrap to 1", MaxVNI, nextVNI(MaxVNI), nextVNI(1))
	}
}

func valid() Network {
	return Network{
		Interface: "eth0", MAC: "0a:58:0a:58:00:05", MTU: 1500, Addresses: []string{"10.88.0.5/16", "fd00::5/64"},
		Routes: []Route{{Destination: "0.0.0.0/0", Gateway: "10.88.0.1"}, {Destination: "10.96.0.0/12"}},
		VNI:    42, Port: VXLANPort, NodeIP: "192.168.1.10",
	}
}

func TestValidateVM(t *testing.T) {
	if err := valid().ValidateVM(); err != nil {
		t.Fatalf("a valid network: %v", err)
	}
	cases := map[string]struct {
		change func(*Network)
		want   string
	}{
		"no interface":              {func(n *Network) { n.Interface = "" }, "interface name"},
		"long interface":            {func(n *Network) { n.Interface = "eth0123456789abc" }, "interface name"},
		"slash in interface":        {func(n *Network) { n.Interface = "a/b" }, "interface name"},
		"bad mac":                   {func(n *Network) { n.MAC = "0a:58:0a" }, "mac"},
		"multicast mac":             {func(n *Network) { n.MAC = "01:00:5e:00:00:01" }, "unicast"},
		"small mtu":                 {func(n *Network) { n.MTU = 575 }, "mtu 575"},
		"large mtu":                 {func(n *Network) { n.MTU = 65536 }, "mtu 65536"},
		"vni 0":                     {func(n *Network) { n.VNI = 0 }, "vni 0"},
		"vni too large":             {func(n *Network) { n.VNI = MaxVNI + 1 }, "vni 16777216"},
		"port 0":                    {func(n *Network) { n.Port = 0 }, "port 0"},
		"bad node ip":               {func(n *Network) { n.NodeIP = "node" }, "node ip"},
		"no address":                {func(n *Network) { n.Addresses = nil }, "at least one address"},
		"address not cidr":          {func(n *Network) { n.Addresses = []string{"10.88.0.5"} }, `address "10.88.0.5"`},
		"bad destination":           {func(n *Network) { n.Routes = []Route{{Destination: "default"}} }, "route destination"},
		"bad gateway":               {func(n *Network) { n.Routes = []Route{{Destination: "0.0.0.0/0", Gateway: "gw"}} }, "gateway"},
		"gateway of another family": {func(n *Network) { n.Routes = []Route{{Destination: "0.0.0.0/0", Gateway: "fd00::1"}} }, "family"},
	}
	for name, c := range cases {
		n := valid()
		c.change(&n)
		if err := n.ValidateVM(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error about %q", name, err, c.want)
		}
	}
}
