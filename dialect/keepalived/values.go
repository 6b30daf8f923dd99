package keepalived

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Readers of keepalived's value types. Each returns an *Error at the word on failure.

// readUint reads a decimal integer in lo..hi.
func readUint(w Word, what string, lo, hi uint64) (uint64, *Error) {
	v, err := strconv.ParseUint(w.Text, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, errorAt(w.Pos, ErrValue, "%s %q: want an integer in %d..%d", what, w.Text, lo, hi)
	}
	return v, nil
}

// maxTimer is keepalived's TIMER_MAXIMUM in seconds (ULONG_MAX µs on 64 bits is more than
// anyone writes; raftlvs's own limits are far lower and checked later).
const maxTimer = 365 * 24 * time.Hour

// readTimer reads a TIMER: seconds, with a fraction down to the microsecond.
func readTimer(w Word, what string, minimum time.Duration) (time.Duration, *Error) {
	bad := func() (time.Duration, *Error) {
		return 0, errorAt(w.Pos, ErrValue, "%s %q: want seconds (a fraction is allowed, as 2.5), at least %v", what, w.Text, minimum)
	}
	whole, frac, _ := strings.Cut(w.Text, ".")
	if whole == "" && frac == "" || !isDigits(whole) || !isDigits(frac) {
		return bad()
	}
	secs := uint64(0)
	if whole != "" {
		var err error
		if secs, err = strconv.ParseUint(whole, 10, 64); err != nil || secs > uint64(maxTimer/time.Second) {
			return bad()
		}
	}
	if len(frac) > 6 {
		frac = frac[:6] // keepalived reads microseconds and drops the rest
	}
	us := uint64(0)
	if frac != "" {
		us, _ = strconv.ParseUint(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
	}
	d := time.Duration(secs)*time.Second + time.Duration(us)*time.Microsecond
	if d < minimum {
		return bad()
	}
	return d, nil
}

// readBool reads keepalived's BOOL; a keyword without a value means true.
func readBool(n *Node) (bool, *Error) {
	if len(n.Args) == 0 {
		return true, nil
	}
	switch w := n.Args[0]; w.Text {
	case "true", "on", "yes":
		return true, nil
	case "false", "off", "no":
		return false, nil
	default:
		return false, errorAt(w.Pos, ErrValue, "%s %q: want on|off|true|false|yes|no", n.Name.Text, w.Text)
	}
}

// readAddr reads a numeric IPv4 or IPv6 address (keepalived uses inet_pton: no names).
func readAddr(w Word, what string) (netip.Addr, *Error) {
	a, err := netip.ParseAddr(w.Text)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errorAt(w.Pos, ErrValue, "%s %q: want a numeric IPv4 or IPv6 address", what, w.Text)
	}
	return a.Unmap(), nil
}

// readPort reads a port; keepalived takes "0" (and 00…) as no port.
func readPort(w Word, what string) (uint16, *Error) {
	if strings.Trim(w.Text, "0") == "" && w.Text != "" {
		return 0, nil
	}
	v, err := readUint(w, what, 1, math.MaxUint16)
	return uint16(v), err
}

// ms turns a duration into whole milliseconds, rounding up; exact reports no rounding.
func ms(d time.Duration) (v int, exact bool) {
	v = int((d + time.Millisecond - 1) / time.Millisecond)
	return v, d%time.Millisecond == 0
}

// fmtDur prints a duration the way a keepalived file would write it.
func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// isDigits reports whether s holds decimal digits only (the empty string does).
func isDigits(s string) bool { return strings.Trim(s, "0123456789") == "" }
