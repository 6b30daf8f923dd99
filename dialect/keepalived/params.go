package keepalived

import (
	"bytes"
	"path"
	"strconv"
)

// predefined are keepalived's own definitions (keepalived.conf(5), "Pre-defined
// definitions"). _RANDOM is drawn from a generator seeded by Options.RandomSeed, so that an
// import is reproducible; _ENV reads Options.LookupEnv.
func predefined() []*definition {
	constant := func(v string) func(*preprocessor, *source, []string, Pos) (string, error) {
		return func(*preprocessor, *source, []string, Pos) (string, error) { return v, nil }
	}
	return []*definition{
		{name: "_PWD", fn: func(_ *preprocessor, src *source, _ []string, _ Pos) (string, error) {
			return path.Dir(src.name), nil
		}},
		{name: "_INSTANCE", fn: func(p *preprocessor, _ *source, _ []string, _ Pos) (string, error) {
			return p.opts.ConfigID, nil
		}},
		{name: "_RANDOM", fn: random, maxParams: 2, numeric: true},
		{name: "_ENV", fn: environment, minParams: 1, maxParams: 1},
		{name: "_HASH", fn: constant("#")},
		{name: "_BANG", fn: constant("!")},
	}
}

// maxRandom keeps ${_RANDOM MIN MAX} within what keepalived's random() can return.
const maxRandom = 1<<31 - 1

func random(p *preprocessor, _ *source, params []string, at Pos) (string, error) {
	bounds := []uint64{0, 32767}
	for i, s := range params {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil || v > maxRandom {
			return "", errorAt(at, ErrValue, "${_RANDOM}: %q is not a number in 0..%d", s, maxRandom)
		}
		bounds[i] = v
	}
	lo, hi := bounds[0], bounds[1]
	if lo > hi {
		return "", errorAt(at, ErrValue, "${_RANDOM %d %d}: the minimum exceeds the maximum (keepalived would use the minimum)", lo, hi)
	}
	v := lo + p.rng.Uint64N(hi-lo+1)
	p.note(at, Note, "${_RANDOM}", "expanded to %d from the seeded generator; keepalived draws a new number each time it reads the file", v)
	return strconv.FormatUint(v, 10), nil
}

func environment(p *preprocessor, _ *source, params []string, at Pos) (string, error) {
	name := params[0]
	if p.opts.LookupEnv != nil {
		if v, ok := p.opts.LookupEnv(name); ok {
			return v, nil
		}
	}
	p.note(at, Note, "${_ENV}", "environment variable %s is not set: expanded to nothing, as keepalived does", name)
	return "", nil
}

// lineWorkFactor bounds the bytes copied while expanding one line, in lines' worth.
const lineWorkFactor = 64

// reference is a parameter found in a line: the definition and where the reference ends.
type reference struct {
	def    *definition
	end    int
	params []string
}

// lookup reads a reference at t.b[j] == '$' as keepalived's find_definition() does:
// $NAME must be followed by a blank, ',', ')' or the end of the line; ${NAME} may be
// followed by anything and may carry parameters (${_RANDOM 1 6}, ${_ENV HOME}). A
// multi-line definition is used only at the end of a line. Undefined names are no
// reference (keepalived leaves them as they are).
func (p *preprocessor) lookup(t text, j int) (reference, bool, error) {
	b := t.b
	k := j + 1
	braces := k < len(b) && b[k] == '{'
	if braces {
		k++
	}
	if k >= len(b) || !isNameStart(b[k]) {
		return reference{}, false, nil
	}
	start := k
	for k < len(b) && isNameByte(b[k]) {
		k++
	}
	name := string(b[start:k])
	var params []string
	end := k
	if braces {
		q := k
		for q < len(b) && (b[q] == ' ' || b[q] == '\t' || isNameByte(b[q])) {
			q++
		}
		if q >= len(b) || b[q] != '}' {
			return reference{}, false, nil
		}
		params = fieldsOf(b[k:q])
		if len(params) > 0 && (b[q-1] == ' ' || b[q-1] == '\t') {
			return reference{}, false, nil
		}
		end = q + 1
	} else if end < len(b) && !bytes.ContainsAny(b[end:end+1], " \t,)") {
		return reference{}, false, nil
	}
	d := p.defs[name]
	if d == nil || d.multiline && end != len(b) {
		return reference{}, false, nil
	}
	at := p.pos(t.locAt(j))
	switch {
	case len(params) > 0 && d.maxParams == 0:
		return reference{}, false, nil
	case len(params) > d.maxParams || len(params) < d.minParams:
		return reference{}, false, errorAt(at, ErrValue, "${%s} takes %d to %d parameters, not %d", name, d.minParams, d.maxParams, len(params))
	case d.numeric && !allDigits(params):
		return reference{}, false, errorAt(at, ErrValue, "${%s} takes numbers only", name)
	}
	return reference{def: d, end: end, params: params}, true, nil
}

// expand replaces the parameters in a line, rescanning each replacement (so values may
// refer to other parameters, defined by the time of use). A multi-line definition at the
// end of the line yields further lines, returned in tail.
func (p *preprocessor) expand(src *source, t text) (first text, tail []text, changed bool, err error) {
	n, work := 0, 0
	for i := 0; ; {
		j := bytes.IndexByte(t.b[i:], '$')
		if j < 0 {
			break
		}
		j += i
		ref, ok, err := p.lookup(t, j)
		if err != nil {
			return text{}, nil, false, err
		}
		if !ok {
			i = j + 1
			continue
		}
		at := p.pos(t.locAt(j))
		n++
		p.replaced++
		if n > maxLineReplacements || p.replaced > p.lim.Replacements {
			return text{}, nil, false, errorAt(at, ErrLimit, "too many parameter replacements (is $%s defined in terms of itself?)", ref.def.name)
		}
		var value []byte
		switch d := ref.def; {
		case d.multiline:
			var v text
			if len(d.lines) > 0 {
				v = d.lines[0]
			}
			value = v.b
			t = t.spliceText(j, ref.end, v)
			rest := make([]text, 0, len(d.lines)+len(tail))
			if len(d.lines) > 1 {
				rest = append(rest, d.lines[1:]...)
			}
			tail = append(rest, tail...)
		case d.fn != nil:
			s, err := d.fn(p, src, ref.params, at)
			if err != nil {
				return text{}, nil, false, err
			}
			value = []byte(s)
			t = t.splice(j, ref.end, value, t.locAt(j))
		default:
			if len(d.lines) > 0 {
				value = d.lines[0].b
			}
			t = t.splice(j, ref.end, value, t.locAt(j))
		}
		changed = true
		// Each replacement copies the line: bound the copying too, or a parameter that
		// grows a line byte by byte costs the square of its length.
		work += t.len()
		if t.len() > p.lim.LineBytes || work > lineWorkFactor*p.lim.LineBytes {
			return text{}, nil, false, errorAt(at, ErrLimit, "expanding $%s makes a line longer than %d bytes, or copies it too often", ref.def.name, p.lim.LineBytes)
		}
		if v := bytes.TrimLeft(value, " \t"); len(v) > 0 && v[0] == '~' {
			break // a generator: keepalived stops replacing here, and so do we
		}
		i = j
	}
	return t, tail, changed, nil
}

func fieldsOf(b []byte) []string {
	var out []string
	for _, f := range bytes.Fields(b) {
		out = append(out, string(f))
	}
	return out
}

func allDigits(ss []string) bool {
	for _, s := range ss {
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return false
			}
		}
	}
	return true
}
