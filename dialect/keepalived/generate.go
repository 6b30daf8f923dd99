package keepalived

import (
	"strconv"
	"strings"
)

// generate runs a ~SEQ or ~LST line: the rest of the line is processed once for each
// value, with the variables defined (keepalived.conf(5), "Sequence blocks"). A generator
// in the rest nests.
func (p *preprocessor) generate(src *source, t text, depth int) error {
	var (
		vars []string
		sets func(yield func([]string) bool)
		rest text
		n    uint64
		err  error
	)
	if t.hasPrefix("~SEQ") {
		vars, sets, n, rest, err = p.parseSeq(src, t)
	} else {
		vars, sets, n, rest, err = p.parseLst(t)
	}
	if err != nil {
		return err
	}
	if left := uint64(max(p.lim.Lines-p.lines, 0)); n > left {
		return errorAt(p.pos(t.locAt(0)), ErrLimit, "the generator makes %d lines, more than the %d left of the limit", n, left)
	}
	at := t.locAt(0)
	for values := range sets {
		for i, v := range vars {
			p.defs[v] = &definition{name: v, lines: []text{textAt(at, values[i])}}
		}
		if _, err = p.process(src, rest.clone(), false, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func textAt(at loc, v string) text {
	a := make([]loc, len(v))
	for i := range a {
		a[i] = at
	}
	return text{b: []byte(v), at: a}
}

// cursor walks the header of a generator, as keepalived's add_seq()/add_lst() do.
type cursor struct {
	b []byte
	i int
}

func (c *cursor) peek() byte {
	if c.i < len(c.b) {
		return c.b[c.i]
	}
	return 0
}

func (c *cursor) blanks() {
	for c.i < len(c.b) && (c.b[c.i] == ' ' || c.b[c.i] == '\t') {
		c.i++
	}
}

// until returns the run of bytes up to one of stop (or the end).
func (c *cursor) until(stop string) string {
	s := c.i
	for c.i < len(c.b) && !strings.ContainsRune(stop, rune(c.b[c.i])) {
		c.i++
	}
	return string(c.b[s:c.i])
}

// parseSeq reads ~SEQ(VAR, [START,] [STEP,] END) or ~SEQx(...). The numbers may be
// parameters, and are C integers (0x.. hex, 0.. octal). The values are produced on demand:
// n says how many there are.
func (p *preprocessor) parseSeq(src *source, t text) ([]string, func(func([]string) bool), uint64, text, error) {
	bad := func(format string, args ...any) ([]string, func(func([]string) bool), uint64, text, error) {
		return nil, nil, 0, text{}, errorAt(p.pos(t.locAt(0)), ErrSyntax, format, args...)
	}
	c := &cursor{b: t.b, i: 4}
	hex := c.peek() == 'x'
	if hex {
		c.i++
	}
	c.blanks()
	if c.peek() != '(' {
		return bad("~SEQ wants (VAR, [START,] [STEP,] END)")
	}
	c.i++
	c.blanks()
	v := c.until(" \t,)")
	c.blanks()
	if v == "" || !validName(v) || c.peek() != ',' {
		return bad("~SEQ wants a variable name, then a comma, as in ~SEQ(N, 1, 4)")
	}
	c.i++
	closing := strings.IndexByte(string(t.b[c.i:]), ')')
	if closing < 0 {
		return bad("~SEQ is missing its closing ')'")
	}
	closing += c.i
	args := t.slice(c.i, closing).clone()
	if expanded, tail, _, err := p.expand(src, args); err != nil {
		return nil, nil, 0, text{}, err
	} else if len(tail) > 0 {
		return bad("a ~SEQ parameter may not be a multi-line definition")
	} else {
		args = expanded
	}
	fields := strings.Split(args.String(), ",")
	if len(fields) > 3 {
		return bad("~SEQ takes at most START, STEP and END")
	}
	nums := make([]int64, len(fields))
	for i, f := range fields {
		n, ok := parseCInt(f)
		if !ok {
			return bad("~SEQ: %q is not an integer", strings.TrimSpace(f))
		}
		nums[i] = n
	}
	var start, step, end int64
	switch len(nums) {
	case 1:
		end = nums[0]
		step, start = 1, 1
		if end < 1 {
			step = -1
		}
		if end < 0 {
			start = -1
		}
	case 2:
		start, end = nums[0], nums[1]
		step = 1
		if start > end {
			step = -1
		}
	case 3:
		start, step, end = nums[0], nums[1], nums[2]
		if step == 0 || start < end && step < 0 || start > end && step > 0 {
			return bad("~SEQ(%s, %d, %d, %d): the step does not lead from start to end", v, start, step, end)
		}
	}
	if hex && (start < 0 || end < 0) {
		return bad("~SEQx takes positive numbers only")
	}
	// Count in unsigned arithmetic: end-start may not fit an int64.
	var span, stride uint64
	if step > 0 {
		span, stride = uint64(end)-uint64(start), uint64(step)
	} else {
		span, stride = uint64(start)-uint64(end), uint64(-(step+1))+1
	}
	n := span/stride + 1
	rest := t.slice(closing+1, t.len()).trimLeft()
	seq := func(yield func([]string) bool) {
		for i := uint64(0); i < n; i++ {
			val := start + int64(i*uint64(step))
			s := strconv.FormatInt(val, 10)
			if hex {
				s = strconv.FormatUint(uint64(val), 16)
			}
			if !yield([]string{s}) {
				return
			}
		}
	}
	return []string{v}, seq, n, rest, nil
}

// parseLst reads ~LST(VAR, V1, V2, ...) or ~LST({A,B}, {A1,B1}, {A2,B2}, ...); missing
// values are empty.
func (p *preprocessor) parseLst(t text) ([]string, func(func([]string) bool), uint64, text, error) {
	bad := func(why string) ([]string, func(func([]string) bool), uint64, text, error) {
		return nil, nil, 0, text{}, errorAt(p.pos(t.locAt(0)), ErrSyntax, "~LST wants (VAR, V1, V2, ...) or ({A,B}, {A1,B1}, ...): %s", why)
	}
	c := &cursor{b: t.b, i: 4}
	c.blanks()
	if c.peek() != '(' {
		return bad("no '('")
	}
	c.i++
	c.blanks()
	endChar := byte(',')
	if c.peek() == '{' {
		endChar = '}'
		c.i++
		c.blanks()
	}
	var vars []string
	for {
		name := c.until(" \t,})")
		if !validName(name) {
			return bad("a variable name is missing or malformed")
		}
		vars = append(vars, name)
		c.blanks()
		if c.peek() == endChar {
			break
		}
		if c.peek() == ')' || c.peek() == 0 {
			return bad("no values")
		}
		if c.peek() != ',' {
			return bad("the variable names are not separated by commas")
		}
		c.i++
		c.blanks()
	}
	if c.peek() == '}' {
		c.i++
		c.blanks()
	}
	if c.peek() != ',' {
		return bad("no values")
	}
	c.i++
	c.blanks()
	var sets [][]string
	for {
		endChar = ','
		if c.peek() == '{' {
			endChar = '}'
			c.i++
			c.blanks()
		}
		var set []string
		for {
			set = append(set, c.until(" \t,})"))
			c.blanks()
			if c.peek() == endChar || c.peek() == ')' && endChar == ',' {
				break
			}
			if c.peek() != ',' {
				return bad("the values are not separated by commas")
			}
			c.i++
			c.blanks()
			if len(set) >= len(vars) {
				return bad("more values in a set than variables")
			}
		}
		for len(set) < len(vars) {
			set = append(set, "")
		}
		sets = append(sets, set)
		if uint64(len(sets)) > uint64(p.lim.Lines) {
			return nil, nil, 0, text{}, errorAt(p.pos(t.locAt(0)), ErrLimit, "~LST has more than %d value sets", p.lim.Lines)
		}
		if c.peek() == '}' && endChar == '}' {
			c.i++
			c.blanks()
		}
		if c.peek() == ')' {
			break
		}
		if c.peek() != ',' {
			return bad("the value sets are not separated by commas, or ')' is missing")
		}
		c.i++
		c.blanks()
	}
	c.i++
	rest := t.slice(min(c.i, t.len()), t.len()).trimLeft()
	all := func(yield func([]string) bool) {
		for _, s := range sets {
			if !yield(s) {
				return
			}
		}
	}
	return vars, all, uint64(len(sets)), rest, nil
}

func validName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// parseCInt reads an integer as C's strtol(s, &end, 0) does when the whole field must be
// a number: an optional sign, then 0x hex, 0 octal or decimal.
func parseCInt(s string) (int64, bool) {
	s = strings.Trim(s, " \t")
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg, s = s[0] == '-', s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X"):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, s = 8, s[1:]
	}
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	u, err := strconv.ParseUint(s, base, 64)
	if err != nil || !neg && u > 1<<63-1 || neg && u > 1<<63 {
		return 0, false
	}
	if neg {
		return int64(-u), true
	}
	return int64(u), true
}
