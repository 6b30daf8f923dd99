package fsm

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The health check's text form, for command lines and config files:
//
//	TYPE[:ARG][,KEY=VALUE]...
//
// ARG is what the type needs most: the path of http and https (http:/healthz), the port
// of tcp, udp, dns and smtp (tcp:8080), the command of exec, which runs to the end of
// the text (exec:/usr/local/bin/check-db --quick). KEYs are the JSON field names, with
// times as durations (interval=1s) and the status codes joined by | (status=200-299|301);
// a value cannot hold a comma: a spec that needs one goes through the API's JSON. "none"
// is the check of type none.

// ParseHealthCheck reads the text form. Errors wrap ErrInvalid and name the key.
func ParseHealthCheck(text string) (*HealthCheck, error) {
	text = strings.TrimSpace(text)
	head, rest, _ := strings.Cut(text, ",")
	typ, arg, hasArg := strings.Cut(head, ":")
	c := &HealthCheck{Type: CheckType(strings.ToLower(typ))}
	if !slices.Contains(CheckTypes, c.Type) {
		return nil, invalid("check", "%q: the type is one of %s", typ, checkTypeList())
	}
	if c.Type == CheckExec && hasArg {
		// The command runs to the end: its arguments may hold commas.
		_, cmd, _ := strings.Cut(text, ":")
		c.Command = strings.Fields(cmd)
		if len(c.Command) == 0 {
			return nil, invalid("check.command", "exec: give the command after the colon")
		}
		return c, nil
	}
	if hasArg {
		if err := c.setArg(arg); err != nil {
			return nil, err
		}
	}
	if rest == "" {
		return c, nil
	}
	for kv := range strings.SplitSeq(rest, ",") {
		if c.Type == CheckExec && strings.HasPrefix(kv, "command=") {
			c.Command = strings.Fields(strings.TrimPrefix(rest[strings.Index(rest, "command="):], "command="))
			break
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, invalid("check", "%q is not KEY=VALUE", kv)
		}
		if err := c.set(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *HealthCheck) setArg(arg string) error {
	switch c.Type {
	case CheckHTTP, CheckHTTPS:
		return c.set("path", arg)
	case CheckTCP, CheckUDP, CheckDNS, CheckSMTP:
		return c.set("port", arg)
	}
	return invalid("check", "%s takes no argument after the colon", c.Type)
}

func (c *HealthCheck) set(key, v string) error {
	bad := func(format string, args ...any) error { return invalid("check."+key, format, args...) }
	ms := func(p *int) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d%time.Millisecond != 0 {
			return bad("%q is not a duration in milliseconds or more (500ms, 2s)", v)
		}
		*p = int(d / time.Millisecond)
		return nil
	}
	num := func(p *int) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("%q is not a whole number", v)
		}
		*p = n
		return nil
	}
	flag := func(p *bool) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return bad("%q is not true or false", v)
		}
		*p = b
		return nil
	}
	switch key {
	case "port":
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return bad("%q is not a port (1..65535)", v)
		}
		c.Port = uint16(n)
	case "source":
		a, err := netip.ParseAddr(v)
		if err != nil {
			return bad("%q is not an IP address", v)
		}
		c.Source = a
	case "interval":
		return ms(&c.IntervalMS)
	case "timeout":
		return ms(&c.TimeoutMS)
	case "jitter":
		return ms(&c.JitterMS)
	case "rise":
		return num(&c.Rise)
	case "fall":
		return num(&c.Fall)
	case "start":
		switch v {
		case "up":
			c.StartDown = false
		case "down":
			c.StartDown = true
		default:
			return bad("%q: want up or down", v)
		}
	case "start_down":
		return flag(&c.StartDown)
	case "method":
		c.Method = v
	case "path":
		c.Path = v
	case "host":
		c.Host = v
	case "sni":
		c.SNI = v
	case "status":
		c.Status = strings.Split(v, "|")
	case "body_regex", "regex":
		c.BodyRegex = v
	case "digest":
		c.Digest = v
	case "tls_verify":
		return flag(&c.TLSVerify)
	case "payload_hex", "payload":
		c.PayloadHex = v
	case "expect":
		c.Expect = v
	case "query":
		c.Query = v
	case "query_type", "qtype":
		c.QueryType = v
	case "rcode":
		c.RCode = v
	case "helo":
		c.HELO = v
	case "dynamic_weight":
		return flag(&c.DynamicWeight)
	default:
		return invalid("check", "unknown key %q", key)
	}
	return nil
}

// String is the text form of the spec (nil: ""), in a fixed key order.
func (c *HealthCheck) String() string {
	if c == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString(string(c.Type))
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, ",%s=%s", k, v)
		}
	}
	dur := func(ms int) string {
		if ms == 0 {
			return ""
		}
		return (time.Duration(ms) * time.Millisecond).String()
	}
	count := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	yes := func(on bool) string {
		if on {
			return "true"
		}
		return ""
	}
	switch c.Type {
	case CheckHTTP, CheckHTTPS:
		if c.Path != "" {
			b.WriteString(":" + c.Path)
		}
	}
	if c.Port != 0 {
		kv("port", strconv.Itoa(int(c.Port)))
	}
	if c.Source.IsValid() {
		kv("source", c.Source.String())
	}
	kv("interval", dur(c.IntervalMS))
	kv("timeout", dur(c.TimeoutMS))
	kv("jitter", dur(c.JitterMS))
	kv("rise", count(c.Rise))
	kv("fall", count(cmp.Or(c.Fall, c.Retries)))
	if c.StartDown {
		kv("start", "down")
	}
	kv("method", c.Method)
	kv("host", c.Host)
	kv("sni", c.SNI)
	kv("status", strings.Join(c.Status, "|"))
	kv("body_regex", c.BodyRegex)
	kv("digest", c.Digest)
	kv("tls_verify", yes(c.TLSVerify))
	kv("payload_hex", c.PayloadHex)
	kv("expect", c.Expect)
	kv("query", c.Query)
	kv("query_type", c.QueryType)
	kv("rcode", c.RCode)
	kv("helo", c.HELO)
	kv("dynamic_weight", yes(c.DynamicWeight))
	if len(c.Command) > 0 {
		kv("command", strings.Join(c.Command, " ")) // last: it runs to the end
	}
	return b.String()
}
