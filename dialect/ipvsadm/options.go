package ipvsadm

import (
	"strings"
)

type argKind int

const (
	noArg argKind = iota
	requiredArg
	optionalArg // taken from the next word unless it starts with '-', as popt does
)

// option is one ipvsadm option that may appear on an -A or -a line.
type option struct {
	short, long string
	arg         argKind
	// slot is the option's column in ipvsadm's commands_v_options table: options that
	// share it (-t -u --sctp-service -f; -g -i -m) may be given once between them.
	slot string
	// on lists the commands that take the option: 'A' (add service), 'a' (add server).
	on string
}

var options = []option{
	{"-t", "--tcp-service", requiredArg, "service", "Aa"},
	{"-u", "--udp-service", requiredArg, "service", "Aa"},
	{"", "--sctp-service", requiredArg, "service", "Aa"},
	{"-f", "--fwmark-service", requiredArg, "service", "Aa"},
	{"-6", "--ipv6", noArg, "", "Aa"},
	{"-s", "--scheduler", requiredArg, "scheduler", "A"},
	{"-p", "--persistent", optionalArg, "persistent", "A"},
	{"-M", "--netmask", requiredArg, "netmask", "A"},
	{"", "--pe", requiredArg, "pe", "A"},
	{"-o", "--ops", noArg, "ops", "A"},
	{"-b", "--sched-flags", requiredArg, "sched-flags", "A"},
	{"-r", "--real-server", requiredArg, "real-server", "a"},
	{"-g", "--gatewaying", noArg, "forward", "a"},
	{"-i", "--ipip", noArg, "forward", "a"},
	{"-m", "--masquerading", noArg, "forward", "a"},
	{"-w", "--weight", requiredArg, "weight", "a"},
	{"-x", "--u-threshold", requiredArg, "u-threshold", "a"},
	{"-y", "--l-threshold", requiredArg, "l-threshold", "a"},
	{"", "--tun-type", requiredArg, "tun-type", "a"},
	{"", "--tun-port", requiredArg, "tun-port", "a"},
	{"", "--tun-nocsum", noArg, "tun-nocsum", "a"},
	{"", "--tun-csum", noArg, "tun-csum", "a"},
	{"", "--tun-remcsum", noArg, "tun-remcsum", "a"},
}

// commands are ipvsadm's commands. Only -A and -a belong in a rule file.
var commands = map[string]byte{
	"-A": 'A', "--add-service": 'A',
	"-a": 'a', "--add-server": 'a',
	"-E": 0, "--edit-service": 0, "-D": 0, "--delete-service": 0, "-C": 0, "--clear": 0,
	"-e": 0, "--edit-server": 0, "-d": 0, "--delete-server": 0, "-L": 0, "-l": 0, "--list": 0,
	"-Z": 0, "--zero": 0, "--set": 0, "-R": 0, "--restore": 0, "-S": 0, "--save": 0,
	"--start-daemon": 0, "--stop-daemon": 0, "-h": 0, "--help": 0, "-v": 0, "--version": 0,
}

func lookupOption(name string) (*option, bool) {
	for i := range options {
		if o := &options[i]; name == o.short || name == o.long {
			return o, true
		}
	}
	return nil, false
}

// arg is one option as given on a line.
type arg struct {
	name  string // as written: "-w" or "--weight"
	value string
	set   bool // value was given (optional arguments only)
	opt   *option
}

// lineArgs are a line's arguments, each option at most once.
type lineArgs []arg

// get returns the argument of the option named long.
func (opts lineArgs) get(long string) (arg, bool) {
	for _, a := range opts {
		if a.opt.long == long {
			return a, true
		}
	}
	return arg{}, false
}

func (opts lineArgs) has(long string) bool {
	_, ok := opts.get(long)
	return ok
}

// splitArgs reads the options of a line after its command, appending them to out. Long options take "=VALUE"
// or the next word; short ones an attached value ("-w5") or the next word.
func splitArgs(out lineArgs, words []string, cmd byte, cmdName string) (lineArgs, error) {
	for i := 0; i < len(words); i++ {
		w := words[i]
		if len(w) < 2 || w[0] != '-' {
			return nil, invalid(w, "unexpected argument")
		}
		name, value, attached := w, "", false
		if strings.HasPrefix(w, "--") {
			name, value, attached = strings.Cut(w, "=")
		} else if len(w) > 2 {
			name, value, attached = w[:2], w[2:], true
		}
		o, ok := lookupOption(name)
		if !ok {
			if _, isCmd := commands[name]; isCmd {
				return nil, invalid(name, "a line holds one command")
			}
			return nil, invalid(name, "unknown option")
		}
		if !strings.ContainsRune(o.on, rune(cmd)) {
			return nil, invalid(name, "not valid with %s", cmdName)
		}
		a := arg{name: name, opt: o}
		switch o.arg {
		case noArg:
			if attached {
				return nil, invalid(name, "takes no value")
			}
		case requiredArg:
			switch {
			case attached:
				a.value, a.set = value, true
			case i+1 < len(words):
				i++
				a.value, a.set = words[i], true
			default:
				return nil, invalid(name, "needs a value")
			}
		case optionalArg:
			switch {
			case attached:
				a.value, a.set = value, true
			case i+1 < len(words) && !strings.HasPrefix(words[i+1], "-"):
				i++
				a.value, a.set = words[i], true
			}
		}
		if a.set && a.value == "" {
			return nil, invalid(name, "needs a value")
		}
		if o.slot != "" {
			for _, prev := range out { // a line has a handful: a map cost more than the parse
				if prev.opt.slot != o.slot {
					continue
				}
				if prev.name == name {
					return nil, invalid(name, "given twice")
				}
				return nil, invalid(name, "conflicts with %s", prev.name)
			}
		}
		out = append(out, a)
	}
	return out, nil
}
