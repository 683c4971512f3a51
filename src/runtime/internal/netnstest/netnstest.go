// Package netnstest gives tests network namespaces of their own, so that they build and break
// real networks without touching the host's. They need root: run as anyone else they skip, saying so.
package netnstest

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"peerpods.io/runtime/pkg/podnet"
)

// RequireRoot skips a test that is not run as root; as root (CI) a failure to make a namespace fails it.
func RequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make network namespaces (CI runs it as root)")
	}
}

// New makes a network namespace bind-mounted under the test's temporary folder; the test's end
// removes it and every device in it.
func New(t *testing.T, name string) string {
	t.Helper()
	RequireRoot(t)
	path := filepath.Join(t.TempDir(), name)
	if err := podnet.CreateNetns(path); err != nil {
		t.Fatalf("making the network namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := podnet.RemoveNetns(path); err != nil {
			t.Errorf("removing the network namespace %s: %v", name, err)
		}
	})
	return path
}

// Handle is a netlink handle in the namespace at path, closed when the test ends.
func Handle(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// In runs fn with the goroutine's thread in the namespace at path: what fn makes (devices through
// netlink.NewHandle, sockets) is made there.
func In(t *testing.T, path string, fn func()) {
	t.Helper()
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer origin.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(origin); err != nil {
			// The thread stays locked and ends with the goroutine rather than run others in the wrong namespace.
			t.Errorf("returning to the original network namespace: %v", err)
			return
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// Veth joins two namespaces with a veth pair, each end named, addressed (a CIDR, or none when
// "") and up.
func Veth(t *testing.T, aPath, aName, aCIDR, bPath, bName, bCIDR string) {
	t.Helper()
	a, b := Handle(t, aPath), Handle(t, bPath)
	bNS, err := netns.GetFromPath(bPath)
	if err != nil {
		t.Fatal(err)
	}
	defer bNS.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = aName
	if err := a.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: bName, PeerNamespace: netlink.NsFd(bNS)}); err != nil {
		t.Fatalf("adding the veth pair %s/%s: %v", aName, bName, err)
	}
	for _, end := range []struct {
		h          *netlink.Handle
		name, cidr string
	}{{a, aName, aCIDR}, {b, bName, bCIDR}} {
		link, err := end.h.LinkByName(end.name)
		if err != nil {
			t.Fatal(err)
		}
		if end.cidr != "" {
			addr, err := netlink.ParseAddr(end.cidr)
			if err != nil {
				t.Fatal(err)
			}
			if err := end.h.AddrAdd(link, addr); err != nil {
				t.Fatal(err)
			}
		}
		if err := end.h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
}

// DefaultRoute routes the namespace's traffic via gateway (on a link it has an address on).
func DefaultRoute(t *testing.T, path, gateway string) {
	t.Helper()
	if err := Handle(t, path).RouteAdd(&netlink.Route{Gw: net.ParseIP(gateway)}); err != nil {
		t.Fatalf("adding the default route via %s: %v", gateway, err)
	}
}
