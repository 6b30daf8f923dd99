package keepalived

// decomment turns one physical line into text as keepalived's decomment() does: leading
// blanks go, a comment starts at # or ! outside double quotes (keepalived does not let
// single quotes protect them), \# and \! outside quotes stand for the characters
// themselves, and any other backslash pair is kept whole so that the lexer sees it.
// cont reports a line that ends in a backslash: a multi-line definition goes on, or (an
// extension of ours) an ordinary line is continued on the next one.
func decomment(raw []byte, file int32, line int32) (t text, cont bool) {
	i := 0
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t') {
		i++
	}
	b := make([]byte, 0, len(raw)-i)
	at := make([]loc, 0, len(raw)-i)
	put := func(j int) {
		b = append(b, raw[j])
		at = append(at, loc{file: file, line: line, col: int32(j + 1)})
	}
	quote := false
scan:
	for ; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\':
			if onlyBlanks(raw[i+1:]) {
				cont = true
				break scan
			}
			if !quote && (raw[i+1] == '#' || raw[i+1] == '!') {
				i++
				put(i)
				continue
			}
			put(i)
			i++
		case !quote && (c == '#' || c == '!'):
			break scan
		}
		put(i)
	}
	return text{b: b, at: at}.trimRight(), cont
}

func onlyBlanks(b []byte) bool {
	for _, c := range b {
		if !isBlank(c) {
			return false
		}
	}
	return true
}
