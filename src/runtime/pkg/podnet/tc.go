package podnet

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// filterPriority marks podnet's tc filters, so Attach and Detach know them from anyone else's.
const filterPriority = 0x7070

var ingressHandle = netlink.MakeHandle(0xffff, 0)

// redirect makes from's ingress send every frame out of to (tc: ingress qdisc, u32 match-all, mirred egress redirect).
func redirect(pod *netlink.Handle, from, to netlink.Link, undo *undoList) error {
	qdisc := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: from.Attrs().Index, Handle: ingressHandle, Parent: netlink.HANDLE_INGRESS}}
	err := pod.QdiscAdd(qdisc)
	switch {
	case err == nil:
		undo.add(func() error { return pod.QdiscDel(qdisc) })
	case errors.Is(err, unix.EEXIST):
		if err := ingressIsFree(pod, from); err != nil {
			return err
		}
	default:
		return fmt.Errorf("adding the ingress qdisc of %s: %w", from.Attrs().Name, err)
	}
	existing, err := ourFilters(pod, from)
	if err != nil {
		return err
	}
	filter := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: from.Attrs().Index, Parent: ingressHandle, Priority: filterPriority, Protocol: unix.ETH_P_ALL},
		Actions:     []netlink.Action{netlink.NewMirredAction(to.Attrs().Index)},
	}
	if len(existing) > 0 {
		if redirectsTo(existing[0], to) {
			return nil
		}
		filter.Handle = existing[0].Attrs().Handle
		err = pod.FilterReplace(filter)
	} else if err = pod.FilterAdd(filter); err == nil {
		undo.add(func() error { return deleteFilters(pod, from) })
	}
	if err != nil {
		return fmt.Errorf("redirecting %s to %s: %w", from.Attrs().Name, to.Attrs().Name, err)
	}
	return nil
}

// ingressIsFree refuses a link whose ingress another kind of qdisc (clsact) holds.
func ingressIsFree(pod *netlink.Handle, link netlink.Link) error {
	qdiscs, err := pod.QdiscList(link)
	if err != nil {
		return err
	}
	for _, qdisc := range qdiscs {
		if qdisc.Attrs().Handle == ingressHandle && qdisc.Type() != "ingress" {
			return fmt.Errorf("%s has a %s qdisc at its ingress: podnet needs an ingress qdisc there", link.Attrs().Name, qdisc.Type())
		}
	}
	return nil
}

func redirectsTo(filter netlink.Filter, to netlink.Link) bool {
	u32, ok := filter.(*netlink.U32)
	if !ok || len(u32.Actions) != 1 {
		return false
	}
	mirred, ok := u32.Actions[0].(*netlink.MirredAction)
	return ok && mirred.MirredAction == netlink.TCA_EGRESS_REDIR && mirred.Ifindex == to.Attrs().Index
}

// ourFilters are podnet's filters on the link's ingress.
func ourFilters(pod *netlink.Handle, link netlink.Link) ([]netlink.Filter, error) {
	filters, err := pod.FilterList(link, ingressHandle)
	if err != nil {
		return nil, fmt.Errorf("listing the ingress filters of %s: %w", link.Attrs().Name, err)
	}
	var out []netlink.Filter
	for _, filter := range filters {
		if filter.Attrs().Priority == filterPriority {
			out = append(out, filter)
		}
	}
	return out, nil
}

func deleteFilters(pod *netlink.Handle, link netlink.Link) error {
	filters, err := ourFilters(pod, link)
	if err != nil {
		return err
	}
	for _, filter := range filters {
		if err := pod.FilterDel(filter); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting a filter of %s: %w", link.Attrs().Name, err)
		}
	}
	return nil
}

// unwire removes podnet's filters from the link's ingress, and the ingress qdisc once it holds none.
func unwire(pod *netlink.Handle, link netlink.Link) error {
	if err := deleteFilters(pod, link); err != nil {
		return err
	}
	qdiscs, err := pod.QdiscList(link)
	if err != nil {
		return err
	}
	for _, qdisc := range qdiscs {
		if _, ingress := qdisc.(*netlink.Ingress); !ingress {
			continue
		}
		if left, err := pod.FilterList(link, ingressHandle); err != nil || len(left) > 0 {
			return err
		}
		if err := pod.QdiscDel(qdisc); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("deleting the ingress qdisc of %s: %w", link.Attrs().Name, err)
		}
	}
	return nil
}
