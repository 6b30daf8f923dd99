package keepalived

import "bytes"

// loc is where one byte of a logical line came from: a file (an index into the
// preprocessor's file table), a line and a column.
type loc struct{ file, line, col int32 }

// text is a logical line on its way through the preprocessor: its bytes and, for each
// byte, where it came from. Splicing keeps the two in step, so that a token produced by
// parameter expansion or a generator still knows its place in the files.
type text struct {
	b  []byte
	at []loc
}

func (t text) len() int { return len(t.b) }

func (t text) String() string { return string(t.b) }

func (t text) slice(i, j int) text { return text{b: t.b[i:j:j], at: t.at[i:j:j]} }

func (t text) clone() text {
	return text{b: bytes.Clone(t.b), at: append([]loc(nil), t.at...)}
}

// locAt is the place of byte i; past the end it is just after the last byte.
func (t text) locAt(i int) loc {
	switch {
	case i < len(t.at):
		return t.at[i]
	case len(t.at) > 0:
		l := t.at[len(t.at)-1]
		l.col++
		return l
	}
	return loc{}
}

// splice replaces t[i:j] with v, every byte of which comes from at.
func (t text) splice(i, j int, v []byte, at loc) text {
	b := make([]byte, 0, len(t.b)-(j-i)+len(v))
	b = append(append(append(b, t.b[:i]...), v...), t.b[j:]...)
	a := make([]loc, 0, len(b))
	a = append(a, t.at[:i]...)
	for range v {
		a = append(a, at)
	}
	a = append(a, t.at[j:]...)
	return text{b: b, at: a}
}

// spliceText replaces t[i:j] with v, keeping v's own places.
func (t text) spliceText(i, j int, v text) text {
	b := make([]byte, 0, len(t.b)-(j-i)+len(v.b))
	b = append(append(append(b, t.b[:i]...), v.b...), t.b[j:]...)
	a := make([]loc, 0, len(b))
	a = append(append(append(a, t.at[:i]...), v.at...), t.at[j:]...)
	return text{b: b, at: a}
}

// join appends u to t with one space between (a continued line).
func (t text) join(u text) text {
	if t.len() == 0 {
		return u
	}
	sp := t.locAt(t.len())
	b := append(append(bytes.Clone(t.b), ' '), u.b...)
	a := append(append(append([]loc(nil), t.at...), sp), u.at...)
	return text{b: b, at: a}
}

// trimLeft drops leading blanks.
func (t text) trimLeft() text {
	i := 0
	for i < len(t.b) && isBlank(t.b[i]) {
		i++
	}
	return t.slice(i, len(t.b))
}

// trimRight drops trailing blanks.
func (t text) trimRight() text {
	j := len(t.b)
	for j > 0 && isBlank(t.b[j-1]) {
		j--
	}
	return t.slice(0, j)
}

func (t text) hasPrefix(p string) bool { return bytes.HasPrefix(t.b, []byte(p)) }

// isBlank is keepalived's idea of the space between words on a line.
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r' }

func isNameStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }

func isNameByte(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }
