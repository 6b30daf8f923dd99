//go:build linux

package ipvs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Generic netlink commands and attributes of IPVS (include/uapi/linux/ip_vs.h).
const (
	ipvsGenlVersion = 1

	ipvsCmdNewService = 1
	ipvsCmdSetService = 2
	ipvsCmdDelService = 3
	ipvsCmdNewDest    = 5
	ipvsCmdSetDest    = 6
	ipvsCmdDelDest    = 7

	ipvsCmdAttrService = 1
	ipvsCmdAttrDest    = 2

	ipvsSvcAttrAF        = 1
	ipvsSvcAttrProtocol  = 2
	ipvsSvcAttrAddr      = 3
	ipvsSvcAttrPort      = 4
	ipvsSvcAttrFWMark    = 5
	ipvsSvcAttrSchedName = 6
	ipvsSvcAttrFlags     = 7
	ipvsSvcAttrTimeout   = 8
	ipvsSvcAttrNetmask   = 9
	ipvsSvcAttrPEName    = 11

	ipvsDestAttrAddr      = 1
	ipvsDestAttrPort      = 2
	ipvsDestAttrFwdMethod = 3
	ipvsDestAttrWeight    = 4
	ipvsDestAttrUThresh   = 5
	ipvsDestAttrLThresh   = 6
)

// A batch is cut into system calls of at most this many messages and bytes: well inside
// the socket's send buffer and, should every message fail, with room for all their error
// replies in the receive buffer (set to writeRcvBuf; 128 replies need about 100 KiB).
const (
	writeMaxMessages = 128
	writeMaxBytes    = 48 << 10
	writeRcvBuf      = 1 << 20
)

// writer sends IPVS writes over its own generic-netlink socket, many messages to a system
// call. Only the last message of each call asks for an acknowledgement; the kernel
// processes the messages in order, answers each failed one with its error and the last
// one in any case, so one reply in the common case covers the whole call. ipvsadm -R and
// moby/ipvs make one round trip per write (and moby allocates 64 KiB for each reply).
type writer struct {
	sock   *nl.NetlinkSocket
	family uint16
	seq    uint32
	out    []byte
	in     []byte
}

// openWriter opens a generic-netlink socket in the network namespace at netnsPath ("" for
// the current one) that writes to the IPVS family numbered family.
func openWriter(netnsPath string, family uint16) (*writer, error) {
	ns := netns.None()
	if netnsPath != "" {
		var err error
		if ns, err = netns.GetFromPath(netnsPath); err != nil {
			return nil, fmt.Errorf("open netns %s: %w", netnsPath, err)
		}
		defer ns.Close()
	}
	sock, err := nl.GetNetlinkSocketAt(ns, netns.None(), unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("open a generic netlink socket for IPVS writes in netns %q: %w", netnsPath, err)
	}
	fd := sock.GetFd()
	// Room for replies whatever net.core.rmem_default says (FORCE needs CAP_NET_ADMIN,
	// which writing to IPVS needs anyway).
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, writeRcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, writeRcvBuf)
	}
	// Error replies carry the request's header only, not its payload.
	_ = unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_CAP_ACK, 1)
	return &writer{sock: sock, family: family, out: make([]byte, 0, writeMaxBytes+4096), in: make([]byte, 64<<10)}, nil
}

func (w *writer) close() { w.sock.Close() }

// apply writes ops in order and returns one error per op (syscall.Errno as the kernel
// reported it). When the kernel's answer to a system call is lost (a receive buffer
// overrun), every op of that call not known to have failed gets that error: it may or may
// not have been applied, and the Reconciler reads the kernel back to find out.
func (w *writer) apply(ops []Op) []error {
	errs := make([]error, len(ops))
	for start := 0; start < len(ops); {
		w.out = w.out[:0]
		first := w.seq + 1
		end, lastMsg := start, 0
		for end < len(ops) && end-start < writeMaxMessages && len(w.out) < writeMaxBytes {
			w.seq++
			lastMsg = len(w.out)
			w.out = w.appendOp(w.out, ops[end])
			end++
		}
		// Only the last message asks for an acknowledgement.
		flags := binary.NativeEndian.Uint16(w.out[lastMsg+6:])
		binary.NativeEndian.PutUint16(w.out[lastMsg+6:], flags|unix.NLM_F_ACK)
		if err := w.exchange(first, errs[start:end]); err != nil {
			for i := start; i < end; i++ {
				if errs[i] == nil {
					errs[i] = err
				}
			}
		}
		start = end
	}
	return errs
}

// exchange sends the messages in w.out, numbered from first, and reads the replies until
// the last one's acknowledgement, recording errors in errs (one per message). The kernel
// handles generic netlink requests inside sendto, so every reply is queued by the time it
// returns: the socket is read without waiting, and no acknowledgement means it was lost.
func (w *writer) exchange(first uint32, errs []error) error {
	fd := w.sock.GetFd()
	w.drain() // replies left by a call that failed: a congested socket drops new ones
	if err := unix.Sendto(fd, w.out, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("send %d IPVS writes: %w", len(errs), err)
	}
	last := first + uint32(len(errs)) - 1
	for {
		n, _, err := unix.Recvfrom(fd, w.in, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return fmt.Errorf("IPVS writes: the kernel's acknowledgement was lost: %w", err)
		case err != nil:
			return fmt.Errorf("IPVS writes: read the kernel's answer: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(w.in[:n])
		if err != nil {
			return fmt.Errorf("IPVS writes: parse the kernel's answer: %w", err)
		}
		done := false
		for _, m := range msgs {
			i := m.Header.Seq - first // wraps for replies to an earlier, abandoned call
			if m.Header.Type != unix.NLMSG_ERROR || i >= uint32(len(errs)) || len(m.Data) < 4 {
				continue
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
				errs[i] = syscall.Errno(-code)
			}
			done = done || m.Header.Seq == last
		}
		if done {
			return nil
		}
	}
}

// drain discards whatever is queued on the socket.
func (w *writer) drain() {
	for {
		_, _, err := unix.Recvfrom(w.sock.GetFd(), w.in, unix.MSG_DONTWAIT)
		if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.ENOBUFS) {
			return
		}
	}
}

// appendOp appends op as one netlink message.
func (w *writer) appendOp(b []byte, op Op) []byte {
	var cmd uint8
	svcFull, dest, destFull := false, false, false
	switch op.Kind {
	case OpAddService:
		cmd, svcFull = ipvsCmdNewService, true
	case OpUpdateService:
		cmd, svcFull = ipvsCmdSetService, true
	case OpDeleteService:
		cmd = ipvsCmdDelService
	case OpAddDestination:
		cmd, dest, destFull = ipvsCmdNewDest, true, true
	case OpUpdateDestination:
		cmd, dest, destFull = ipvsCmdSetDest, true, true
	case OpDeleteDestination:
		cmd, dest = ipvsCmdDelDest, true
	}
	start := len(b)
	b = binary.NativeEndian.AppendUint32(b, 0) // length, set below
	b = binary.NativeEndian.AppendUint16(b, w.family)
	b = binary.NativeEndian.AppendUint16(b, unix.NLM_F_REQUEST)
	b = binary.NativeEndian.AppendUint32(b, w.seq)
	b = binary.NativeEndian.AppendUint32(b, 0) // port id: the kernel knows the sender
	b = append(b, cmd, ipvsGenlVersion, 0, 0)
	b = appendServiceAttr(b, op.Service, svcFull)
	if dest {
		b = appendDestAttr(b, op.Destination, destFull)
	}
	binary.NativeEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// appendServiceAttr appends IPVS_CMD_ATTR_SERVICE: the key, and with full the settings
// (what NEW_SERVICE and SET_SERVICE require).
func appendServiceAttr(b []byte, s Service, full bool) []byte {
	nest := len(b)
	b = appendAttr(b, ipvsCmdAttrService, nil)
	b = appendAttr(b, ipvsSvcAttrAF, binary.NativeEndian.AppendUint16(nil, s.Family))
	if s.FWMark != 0 {
		b = appendAttr(b, ipvsSvcAttrFWMark, binary.NativeEndian.AppendUint32(nil, s.FWMark))
	} else {
		b = appendAttr(b, ipvsSvcAttrProtocol, binary.NativeEndian.AppendUint16(nil, s.Protocol))
		b = appendAttr(b, ipvsSvcAttrAddr, s.Address.Unmap().AsSlice())
		b = appendAttr(b, ipvsSvcAttrPort, binary.BigEndian.AppendUint16(nil, s.Port))
	}
	if full {
		b = appendAttr(b, ipvsSvcAttrSchedName, append([]byte(s.Scheduler), 0))
		if s.PEName != "" {
			b = appendAttr(b, ipvsSvcAttrPEName, append([]byte(s.PEName), 0))
		}
		flags := binary.NativeEndian.AppendUint32(nil, s.Flags&^FlagHashed)
		b = appendAttr(b, ipvsSvcAttrFlags, binary.NativeEndian.AppendUint32(flags, 0xffffffff))
		b = appendAttr(b, ipvsSvcAttrTimeout, binary.NativeEndian.AppendUint32(nil, s.Timeout))
		b = appendAttr(b, ipvsSvcAttrNetmask, netmaskBytes(s.Family, s.Netmask))
	}
	binary.NativeEndian.PutUint16(b[nest:], uint16(len(b)-nest))
	return b
}

// netmaskBytes encodes the persistence netmask as the kernel reads it: an IPv4 mask in
// network byte order (nla_get_be32), an IPv6 prefix length as a plain u32.
func netmaskBytes(family uint16, mask uint32) []byte {
	if family == FamilyIPv6 {
		return binary.NativeEndian.AppendUint32(nil, mask)
	}
	return binary.BigEndian.AppendUint32(nil, mask)
}

// appendDestAttr appends IPVS_CMD_ATTR_DEST: the key, and with full the settings.
func appendDestAttr(b []byte, d Destination, full bool) []byte {
	nest := len(b)
	b = appendAttr(b, ipvsCmdAttrDest, nil)
	b = appendAttr(b, ipvsDestAttrAddr, d.Address.Unmap().AsSlice())
	b = appendAttr(b, ipvsDestAttrPort, binary.BigEndian.AppendUint16(nil, d.Port))
	if full {
		b = appendAttr(b, ipvsDestAttrFwdMethod, binary.NativeEndian.AppendUint32(nil, uint32(d.Forwarding)&0x7))
		b = appendAttr(b, ipvsDestAttrWeight, binary.NativeEndian.AppendUint32(nil, uint32(d.Weight)))
		b = appendAttr(b, ipvsDestAttrUThresh, binary.NativeEndian.AppendUint32(nil, d.UpperThreshold))
		b = appendAttr(b, ipvsDestAttrLThresh, binary.NativeEndian.AppendUint32(nil, d.LowerThreshold))
	}
	binary.NativeEndian.PutUint16(b[nest:], uint16(len(b)-nest))
	return b
}

// appendAttr appends one netlink attribute, padded to 4 bytes. A nested attribute is
// appended with no data and its length set once its children follow.
func appendAttr(b []byte, typ uint16, data []byte) []byte {
	b = binary.NativeEndian.AppendUint16(b, uint16(4+len(data)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}
