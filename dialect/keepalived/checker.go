package keepalived

import (
	"encoding/hex"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// checkConf is a checker block (TCP_CHECK, HTTP_GET, ...) as read.
type checkConf struct {
	node      *Node
	kind      string        // the keyword
	typ       fsm.CheckType // "" for a checker raftlvs has no counterpart of
	connectIP optional[netip.Addr]
	port      uint16
	bindto    netip.Addr
	inherited

	// HTTP_GET and SSL_GET
	urls    []*urlConf
	sni     optional[bool]
	sniName string

	// MISC_CHECK
	command     []string
	commandAt   Pos
	miscTimeout optional[time.Duration]
	dynamic     bool

	helo    string // SMTP_CHECK
	dnsType string // DNS_CHECK
	dnsName string

	// UDP_CHECK
	payload  string // hex
	expect   string // a regular expression over the reply
	expectAt Pos
}

// urlConf is a url block of HTTP_GET or SSL_GET.
type urlConf struct {
	node        *Node
	path        string
	digest      string
	status      []string
	virtualhost optional[string]
	regex       optional[string]
	noMatch     bool
}

var (
	checkOnce     sync.Once
	urlOnce       sync.Once
	checkerTables map[string]table[*checkConf]
	urlTable      table[*urlConf]
)

// checkerTypes maps keepalived's checkers to raftlvs's; "" has no counterpart.
var checkerTypes = map[string]fsm.CheckType{
	"TCP_CHECK": fsm.CheckTCP, "HTTP_GET": fsm.CheckHTTP, "SSL_GET": fsm.CheckHTTPS,
	"MISC_CHECK": fsm.CheckExec, "SMTP_CHECK": fsm.CheckSMTP, "DNS_CHECK": fsm.CheckDNS,
	"UDP_CHECK": fsm.CheckUDP, "PING_CHECK": "", "FILE_CHECK": "", "BFD_CHECK": "",
}

// checkerEntries are the checker keywords of a real_server.
func checkerEntries() table[*rsConf] {
	tables := checkerKeywords()
	out := table[*rsConf]{}
	for kind, typ := range checkerTypes {
		tbl := tables[kind]
		out[kind] = entry[*rsConf]{block: true, fn: func(t *translator, r *rsConf, n *Node) {
			c := &checkConf{node: n, kind: kind, typ: typ}
			dispatch(t, kind, tbl, c, n.Block)
			r.checkers = append(r.checkers, c)
		}}
	}
	return out
}

func checkerKeywords() map[string]table[*checkConf] {
	checkOnce.Do(func() {
		common := func(connection bool) table[*checkConf] {
			tbl := timing(func(c *checkConf) *inherited { return &c.inherited })
			delete(tbl, "virtualhost")
			tbl["alpha"] = entry[*checkConf]{max: 1, fn: func(t *translator, c *checkConf, n *Node) {
				if b, err := readBool(n); err != nil {
					t.fail(err)
				} else {
					c.alpha.put(b, n.Pos())
				}
			}}
			tbl["log_all_failures"] = unmapped[*checkConf](0, 1, "raftlvs logs each health transition, not every failed probe")
			if !connection {
				delete(tbl, "connect_timeout")
				return tbl
			}
			tbl["connect_ip"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
				if a, err := readAddr(n.Args[0], "connect_ip"); err != nil {
					t.fail(err)
				} else {
					c.connectIP.put(a, n.Args[0].Pos)
				}
			}}
			tbl["connect_port"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
				if p, err := readUint(n.Args[0], "connect_port", 1, math.MaxUint16); err != nil {
					t.fail(err)
				} else {
					c.port = uint16(p)
				}
			}}
			tbl["bindto"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
				if a, err := readAddr(n.Args[0], "bindto"); err != nil {
					t.fail(err)
				} else {
					c.bindto = a
				}
			}}
			tbl["bind_port"] = unmapped[*checkConf](1, 1, "raftlvs's probes use a port the kernel picks")
			tbl["bind_if"] = unmapped[*checkConf](1, 1, "raftlvs's probes leave the interface to the routing table")
			tbl["fwmark"] = unmapped[*checkConf](1, 1, "raftlvs's probes carry no firewall mark")
			return tbl
		}
		web := func(ssl bool) table[*checkConf] {
			tbl := common(true)
			tbl["nb_get_retry"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
				t.report(n.Pos(), Note, "nb_get_retry", "read as retry, which keepalived has replaced it with")
				tbl["retry"].fn(t, c, n)
			}}
			tbl["virtualhost"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
				c.virtualhost.put(n.Args[0].Text, n.Args[0].Pos)
			}}
			tbl["http_protocol"] = unmapped[*checkConf](1, 1, "raftlvs's http check picks its own HTTP version")
			tbl["fast_recovery"] = unmapped[*checkConf](0, 1, "raftlvs checks one url per real server, at every interval")
			tbl["url"] = entry[*checkConf]{block: true, fn: func(t *translator, c *checkConf, n *Node) {
				u := &urlConf{node: n}
				dispatch(t, "url", urlKeywords(), u, n.Block)
				if u.path == "" {
					t.fail(errorAt(n.Pos(), ErrValue, "url needs a path (keepalived ignores a url without one)"))
					return
				}
				c.urls = append(c.urls, u)
			}}
			if ssl {
				tbl["enable_sni"] = entry[*checkConf]{max: 1, fn: func(t *translator, c *checkConf, n *Node) {
					if b, err := readBool(n); err != nil {
						t.fail(err)
					} else {
						c.sni.put(b, n.Pos())
					}
				}}
				tbl["sni_name"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
					c.sniName = n.Args[0].Text
				}}
				tbl["tls_compliant"] = unmapped[*checkConf](0, 1, "raftlvs's https check always ends TLS sessions properly")
			}
			return tbl
		}
		misc := common(false)
		misc["misc_path"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
			args, ok := splitCommand(n.Args[0].Text)
			if !ok || len(args) == 0 {
				t.fail(errorAt(n.Args[0].Pos, ErrValue, "misc_path %q: an unterminated quote or a dangling backslash", n.Args[0].Text))
				return
			}
			c.command, c.commandAt = args, n.Args[0].Pos
		}}
		misc["misc_timeout"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
			if s, err := readUint(n.Args[0], "misc_timeout", 0, math.MaxInt32); err != nil {
				t.fail(err)
			} else if s > 0 {
				c.miscTimeout.put(time.Duration(s)*time.Second, n.Args[0].Pos)
			}
		}}
		misc["misc_dynamic"] = entry[*checkConf]{fn: func(_ *translator, c *checkConf, _ *Node) { c.dynamic = true }}
		misc["user"] = unmapped[*checkConf](1, 2, "the director runs exec checks as its own user, and only programs under its --exec-check-dir")

		smtp := common(true)
		smtp["helo_name"] = entry[*checkConf]{min: 1, max: 1, fn: func(_ *translator, c *checkConf, n *Node) { c.helo = n.Args[0].Text }}
		smtp["host"] = unmappedBlock[*checkConf]("SMTP_CHECK host blocks are deprecated in keepalived; raftlvs checks the real server itself")

		dns := common(true)
		dns["type"] = entry[*checkConf]{min: 1, max: 1, fn: func(t *translator, c *checkConf, n *Node) {
			ty := strings.ToUpper(n.Args[0].Text)
			switch ty {
			case "A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA":
				c.dnsType = ty
			default:
				t.fail(errorAt(n.Args[0].Pos, ErrValue, "DNS_CHECK type %q: want A, NS, CNAME, SOA, MX, TXT or AAAA", n.Args[0].Text))
			}
		}}
		dns["name"] = entry[*checkConf]{min: 1, max: 1, fn: func(_ *translator, c *checkConf, n *Node) { c.dnsName = n.Args[0].Text }}

		udp := common(true)
		udp["payload"] = entry[*checkConf]{min: 1, max: -1, fn: func(t *translator, c *checkConf, n *Node) {
			b, _, ok := readHex(n.Args, false)
			if !ok {
				t.fail(errorAt(n.Args[0].Pos, ErrValue, "payload: want hex digits, as 0a1b2c"))
				return
			}
			c.payload = hex.EncodeToString(b)
		}}
		udp["require_reply"] = entry[*checkConf]{max: -1, fn: (*translator).requireReply}
		udp["min_reply_length"] = unmapped[*checkConf](1, 1, "raftlvs's udp check bounds a reply by its pattern only")
		udp["max_reply_length"] = unmapped[*checkConf](1, 1, "raftlvs's udp check bounds a reply by its pattern only")

		file := table[*checkConf]{
			"track_file": {min: 1, max: 1, fn: func(*translator, *checkConf, *Node) {}},
			"weight":     {min: 1, max: 2, fn: func(*translator, *checkConf, *Node) {}},
		}
		bfd := table[*checkConf]{
			"name":  {min: 1, max: 1, fn: func(*translator, *checkConf, *Node) {}},
			"alpha": {max: 1, fn: func(*translator, *checkConf, *Node) {}},
		}
		checkerTables = map[string]table[*checkConf]{
			"TCP_CHECK": common(true), "HTTP_GET": web(false), "SSL_GET": web(true),
			"MISC_CHECK": misc, "SMTP_CHECK": smtp, "DNS_CHECK": dns, "UDP_CHECK": udp,
			"PING_CHECK": common(true), "FILE_CHECK": file, "BFD_CHECK": bfd,
		}
	})
	return checkerTables
}

func urlKeywords() table[*urlConf] {
	urlOnce.Do(buildURLKeywords)
	return urlTable
}

func buildURLKeywords() {
	urlTable = table[*urlConf]{
		"path": {min: 1, max: 1, fn: func(_ *translator, u *urlConf, n *Node) { u.path = n.Args[0].Text }},
		"digest": {min: 1, max: 1, fn: func(t *translator, u *urlConf, n *Node) {
			d := strings.ToLower(n.Args[0].Text)
			if _, err := hex.DecodeString(d); err != nil || len(d) != 32 {
				t.fail(errorAt(n.Args[0].Pos, ErrValue, "digest %q: want an MD5 digest, 32 hex digits", n.Args[0].Text))
				return
			}
			u.digest = d
		}},
		"status_code": {min: 1, max: -1, fn: func(t *translator, u *urlConf, n *Node) {
			for _, w := range n.Args {
				if _, _, err := fsm.ParseStatusRange(w.Text); err != nil {
					t.fail(causedAt(w.Pos, ErrValue, err, "status_code"))
					return
				}
				u.status = append(u.status, w.Text)
			}
		}},
		"virtualhost": {min: 1, max: 1, fn: func(_ *translator, u *urlConf, n *Node) {
			u.virtualhost.put(n.Args[0].Text, n.Args[0].Pos)
		}},
		"regex": {min: 1, max: 1, fn: func(t *translator, u *urlConf, n *Node) {
			if _, err := regexp.Compile(n.Args[0].Text); err != nil {
				t.fail(causedAt(n.Args[0].Pos, ErrUnsupported, err, "regex %q is not RE2 syntax, which raftlvs uses (keepalived uses PCRE2)", n.Args[0].Text))
				return
			}
			u.regex.put(n.Args[0].Text, n.Args[0].Pos)
		}},
		"regex_no_match":   {fn: func(_ *translator, u *urlConf, _ *Node) { u.noMatch = true }},
		"regex_options":    unmapped[*urlConf](1, -1, "raftlvs's regular expressions take their flags inline, as (?i)"),
		"regex_min_offset": unmapped[*urlConf](1, 1, "raftlvs matches the regex anywhere in the body"),
		"regex_max_offset": unmapped[*urlConf](1, 1, "raftlvs matches the regex anywhere in the body"),
		"regex_stack":      unmapped[*urlConf](1, 1, "RE2 needs no stack size"),
		"tls_compliant":    unmapped[*urlConf](0, 1, "raftlvs's https check always ends TLS sessions properly"),
	}
}

// readHex reads keepalived's hex strings (read_hex_str): pairs of hex digits, blanks
// between bytes, a lone digit before a blank a byte of its own; with wildcards, X stands
// for any nibble (the mask has the bits that must match).
func readHex(words []Word, wildcards bool) (data, mask []byte, ok bool) {
	var s strings.Builder
	for i, w := range words {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(w.Text)
	}
	str := s.String()
	nibble := func(c byte) (v, m byte, ok bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', 0xf, true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, 0xf, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, 0xf, true
		case wildcards && c == 'X':
			return 0, 0, true
		}
		return 0, 0, false
	}
	for i := 0; i < len(str); {
		if str[i] == ' ' || str[i] == '\t' {
			i++
			continue
		}
		v, m, ok := nibble(str[i])
		if !ok {
			return nil, nil, false
		}
		i++
		if i < len(str) && str[i] != ' ' {
			v2, m2, ok := nibble(str[i])
			if !ok {
				return nil, nil, false
			}
			v, m = v<<4|v2, m<<4|m2
			i++
		}
		data, mask = append(data, v), append(mask, m)
	}
	return data, mask, len(data) > 0
}

// requireReply turns require_reply [HEX] into the pattern the udp check matches the
// reply against: the reply must begin with the bytes given (any reply without them).
func (t *translator) requireReply(c *checkConf, n *Node) {
	c.expectAt = n.Pos()
	if len(n.Args) == 0 {
		c.expect = "^"
		return
	}
	data, mask, ok := readHex(n.Args, true)
	if !ok {
		t.fail(errorAt(n.Args[0].Pos, ErrValue, "require_reply: want hex digits, X for any nibble"))
		return
	}
	var re strings.Builder
	re.WriteString("^")
	approximate := false
	for i, b := range data {
		switch {
		case mask[i] == 0:
			re.WriteString(`(?s:.)`)
		case mask[i] != 0xff || b >= 0x80:
			// Go's regular expressions match UTF-8, not bytes: a byte above 0x7f, or a
			// half-known one, can only be matched as any byte.
			re.WriteString(`(?s:.)`)
			approximate = true
		case b < 0x20 || b == 0x7f:
			fmt.Fprintf(&re, `\x%02x`, b)
		default:
			re.WriteString(regexp.QuoteMeta(string(rune(b))))
		}
	}
	c.expect = re.String()
	if approximate {
		t.report(n.Pos(), Differs, "require_reply", "bytes above 0x7f and half-wildcards (as 4X) are matched as any byte by raftlvs's pattern %q", c.expect)
	}
}
