package keepalived

// tokenKind is what a token of a logical line is.
type tokenKind uint8

const (
	tokWord  tokenKind = iota
	tokOpen            // {
	tokClose           // }
)

type token struct {
	kind tokenKind
	text string
	at   loc
}

// tokenize splits a logical line into words and braces. A word runs to a blank or a brace;
// "..." and '...' quote blanks, braces and comment characters, and quoted parts join the
// text around them into one word (keepalived.conf(5), "Quoted strings": abcd" efg "h is
// the one word "abcd efg h"). A backslash keeps the next byte from being special and both
// bytes stay in the word: escapes are interpreted only where keepalived does, in the
// command of a script (see splitCommand), so a regular expression keeps its backslashes.
func tokenize(t text, pos func(loc) Pos) ([]token, error) {
	var toks []token
	b := t.b
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case isBlank(c):
			i++
			continue
		case c == '{':
			toks = append(toks, token{kind: tokOpen, text: "{", at: t.at[i]})
			i++
			continue
		case c == '}':
			toks = append(toks, token{kind: tokClose, text: "}", at: t.at[i]})
			i++
			continue
		}
		start := i
		var w []byte
		var quote byte
		var quoteAt int
	word:
		for i < len(b) {
			c := b[i]
			switch {
			case quote != 0 && c == quote:
				quote = 0
				i++
			case quote != 0:
				if c == '\\' && i+1 < len(b) {
					w = append(w, c, b[i+1])
					i += 2
					continue
				}
				w = append(w, c)
				i++
			case c == '"' || c == '\'':
				quote, quoteAt = c, i
				i++
			case c == '\\' && i+1 < len(b):
				w = append(w, c, b[i+1])
				i += 2
			case isBlank(c) || c == '{' || c == '}':
				break word
			default:
				w = append(w, c)
				i++
			}
		}
		if quote != 0 {
			return nil, errorAt(pos(t.at[quoteAt]), ErrSyntax, "unterminated %c quote", quote)
		}
		toks = append(toks, token{kind: tokWord, text: string(w), at: t.at[start]})
	}
	return toks, nil
}
