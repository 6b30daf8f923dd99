package keepalived

import "strings"

// splitCommand splits the command of a script keyword (misc_path, notify_up, quorum_up,
// ...) into its arguments as keepalived's alloc_strvec_quoted_escaped() does: blanks
// separate arguments, '...' and "..." quote (and join what touches them), and backslash
// escapes work inside and outside quotes (\a \b \E \f \n \r \t \v, \NNN octal, \xHH hex,
// \cC control, \C for C itself). keepalived reads a script's command from the first word
// after the keyword, so a command with arguments is written in quotes:
// misc_path "/usr/local/bin/check -p 'two words'".
func splitCommand(s string) (args []string, ok bool) {
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i >= len(s) {
				return nil, false
			}
			n, b := unescape(s[i:])
			cur.WriteByte(b)
			i += n - 1
			inWord = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, false
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, true
}

// unescape reads the escape after a backslash: how many bytes it takes, and the byte.
func unescape(s string) (int, byte) {
	hexVal := func(c byte) (byte, bool) {
		switch {
		case c >= '0' && c <= '9':
			return c - '0', true
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10, true
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	switch c := s[0]; {
	case c == 'x' && len(s) > 1:
		if v, ok := hexVal(s[1]); ok {
			if len(s) > 2 {
				if w, ok := hexVal(s[2]); ok {
					return 3, v<<4 | w
				}
			}
			return 2, v
		}
		return 1, 'x'
	case c == 'c' && len(s) > 1:
		return 2, s[1] & 0x1f
	case c >= '0' && c <= '7':
		v, n := c-'0', 1
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			v = v<<3 + s[n] - '0'
			n++
		}
		return n, v
	default:
		if e := strings.IndexByte("abEfnrtv", c); e >= 0 {
			return 1, "\a\b\x1b\f\n\r\t\v"[e]
		}
		return 1, c
	}
}
