package keepalived

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// includeKind is the include variant: keepalived's include_check levels.
type includeKind struct {
	word       string
	match      bool // the pattern as a whole must match a file (includem, includew, includeb, includea)
	wildcards  bool // each wildcard alternative must match (includew, includea)
	everyBrace bool // each brace alternative must match (includeb, includea)
}

var includeKinds = map[string]includeKind{
	"include":  {word: "include"},
	"includer": {word: "includer"},
	"includem": {word: "includem", match: true},
	"includew": {word: "includew", match: true, wildcards: true},
	"includeb": {word: "includeb", match: true, everyBrace: true},
	"includea": {word: "includea", match: true, wildcards: true, everyBrace: true},
}

// maxBraceAlternatives bounds what one include pattern's braces expand to.
const maxBraceAlternatives = 1024

// includeDirective recognises an include line as keepalived's is_include() does: the
// word, then a blank, then the pattern (the rest of the line, taken literally).
func includeDirective(t text) (includeKind, text, bool) {
	word, _, _ := strings.Cut(string(t.b), " ")
	word, _, _ = strings.Cut(word, "\t")
	k, ok := includeKinds[word]
	if !ok {
		return includeKind{}, text{}, false
	}
	return k, t.slice(len(word), t.len()).trimLeft(), true
}

// include reads the files an include line names, relative to the including file, in the
// order of the brace alternatives and, within each, of the sorted glob matches.
//
// keepalived's plain include skips a missing file without a word; we refuse it, naming
// the include line: an import that silently lacks a file of virtual servers would remove
// them from the cluster on --apply. A wildcard that matches nothing is allowed (an empty
// conf.d) and noted, unless the include variant demands matches.
func (p *preprocessor) include(src *source, k includeKind, pattern text, at Pos) error {
	pat := pattern.String()
	if pat == "" {
		return errorAt(at, ErrSyntax, "%s needs a file name or pattern", k.word)
	}
	if !path.IsAbs(pat) {
		pat = path.Join(path.Dir(src.name), pat)
	}
	alts, err := expandBraces(pat, maxBraceAlternatives)
	if err != nil {
		return causedAt(at, ErrLimit, err, "%s %s", k.word, pattern)
	}
	total := 0
	for _, alt := range alts {
		alt = path.Clean(alt)
		var files []string
		if !hasGlobMeta(alt) {
			st, err := fs.Stat(p.fsys, fsPath(alt))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return causedAt(at, ErrInclude, err, "%s %s: %s does not exist (keepalived's plain include would skip it silently; raftlvs refuses, since the import would lack its services)", k.word, pattern, alt)
			case err != nil:
				return causedAt(at, ErrInclude, err, "%s %s", k.word, pattern)
			case st.IsDir():
				return errorAt(at, ErrInclude, "%s %s: %s is a directory", k.word, pattern, alt)
			}
			files = []string{alt}
		} else {
			matches, err := fs.Glob(p.fsys, fsPath(alt))
			if err != nil {
				return causedAt(at, ErrSyntax, err, "%s %s: bad pattern", k.word, pattern)
			}
			for _, m := range matches {
				name := "/" + m
				if st, err := fs.Stat(p.fsys, m); err == nil && st.IsDir() {
					p.note(at, Note, k.word, "%s matches the directory %s: skipped", alt, name)
					continue
				}
				files = append(files, name)
			}
			if len(files) == 0 {
				if k.wildcards {
					return errorAt(at, ErrInclude, "%s %s: %s matches no file", k.word, pattern, alt)
				}
				p.note(at, Note, k.word, "%s matches no file (allowed, as in keepalived)", alt)
			}
		}
		if len(files) == 0 && k.everyBrace && len(alts) > 1 {
			return errorAt(at, ErrInclude, "%s %s: the alternative %s matches no file", k.word, pattern, alt)
		}
		for _, f := range files {
			if err := p.readFile(f, at); err != nil {
				return err
			}
		}
		total += len(files)
	}
	if total == 0 && k.match {
		return errorAt(at, ErrInclude, "%s %s matches no file", k.word, pattern)
	}
	return nil
}

func hasGlobMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// fsPath turns an absolute slash path into an fs.FS path rooted at "/".
func fsPath(name string) string {
	if name = strings.TrimLeft(path.Clean(name), "/"); name == "" {
		return "."
	}
	return name
}

// expandBraces expands csh braces: "a{b,c{d,e}}f" is abf, acdf, acef. A brace with no
// match is literal, as in glob(3) with GLOB_BRACE.
func expandBraces(s string, limit int) ([]string, error) {
	out := []string{}
	var walk func(string) error
	walk = func(s string) error {
		open, closing := -1, -1
		depth := 0
		for i := 0; i < len(s) && closing < 0; i++ {
			switch s[i] {
			case '{':
				if depth == 0 {
					open = i
				}
				depth++
			case '}':
				if depth > 0 {
					depth--
					if depth == 0 {
						closing = i
					}
				}
			}
		}
		if closing < 0 {
			if len(out) >= limit {
				return fmt.Errorf("the braces expand to more than %d patterns", limit)
			}
			out = append(out, s)
			return nil
		}
		prefix, body, suffix := s[:open], s[open+1:closing], s[closing+1:]
		depth, last := 0, 0
		for i := 0; i <= len(body); i++ {
			if i < len(body) {
				switch body[i] {
				case '{':
					depth++
					continue
				case '}':
					depth--
					continue
				case ',':
					if depth != 0 {
						continue
					}
				default:
					continue
				}
			}
			if err := walk(prefix + body[last:i] + suffix); err != nil {
				return err
			}
			last = i + 1
		}
		return nil
	}
	if err := walk(s); err != nil {
		return nil, err
	}
	return out, nil
}
