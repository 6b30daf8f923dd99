package fsm

import "net/netip"

// Some addresses pass as unicast but cannot carry load-balanced traffic: loopback,
// link-local, the IPv4 broadcast address, anything with an IPv6 zone. They are refused
// when a command is prepared, not when it is applied: a rule added in a later release
// must never change how an existing log replays.
func checkUsable(field string, a netip.Addr) error {
	switch {
	case !a.IsValid():
		return nil // required-ness is the validator's business
	case a.Zone() != "":
		return invalid(field, "%s: an address with a zone is not usable here", a)
	case a.IsLoopback():
		return invalid(field, "%s is a loopback address", a)
	case a.IsLinkLocalUnicast():
		return invalid(field, "%s is a link-local address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return invalid(field, "%s is the broadcast address", a)
	}
	return nil
}

// checkUsableAddresses applies checkUsable to every address a command brings in.
func checkUsableAddresses(c Command) error {
	switch c := c.(type) {
	case AddService:
		return serviceUsable(&c.Service)
	case EditService:
		return serviceUsable(&c.Service)
	case AddRealServer:
		return checkUsable("addr", c.RealServer.Addr)
	case EditRealServer:
		return checkUsable("addr", c.RealServer.Addr)
	case UpsertAgentRS:
		return checkUsable("addr", c.RealServer.Addr)
	case AddVIP:
		return vipUsable(c.VIP)
	case Batch:
		return eachCommand(c.Commands, checkUsableAddresses)
	case StageChunk:
		return eachCommand(c.Commands, checkUsableAddresses)
	}
	return nil
}

func serviceUsable(s *Service) error {
	if err := checkUsable("vip", s.VIP); err != nil {
		return err
	}
	return checkUsable("sorry_server", s.SorryServer.Addr())
}
