package keepalived

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"strings"
)

// preprocessor turns files into logical lines as keepalived's read_line() does: comments,
// includes, @id conditionals, $NAME=VALUE parameters (lazy, recursive, multi-line) and the
// ~SEQ/~LST generators. Each finished line goes to sink. Everything it does is bounded by
// Limits.
type preprocessor struct {
	fsys     fs.FS
	opts     Options
	lim      Limits
	files    []string // file table: loc.file indexes it
	stack    []string // files being read, outermost first (include cycle detection)
	defs     map[string]*definition
	lines    int
	bytes    int64
	replaced int
	rng      *rand.Rand
	findings []Finding
	sink     func(text) error
}

// source is a file being read.
type source struct {
	name    string
	capture *definition // a multi-line definition being read, if any
	joined  text        // a line continued with a trailing backslash
	joining bool
}

// definition is a $NAME: its value (several lines for a multi-line definition), or a
// function for keepalived's predefined ones.
type definition struct {
	name      string
	lines     []text
	multiline bool
	fn        func(p *preprocessor, src *source, params []string, at Pos) (string, error)
	minParams int
	maxParams int
	numeric   bool
}

// maxLineReplacements bounds the replacements in one line: a parameter that contains
// itself would otherwise grow the line, and each rescan copies it.
const maxLineReplacements = 4096

func newPreprocessor(fsys fs.FS, opts Options, sink func(text) error) *preprocessor {
	p := &preprocessor{
		fsys: fsys, opts: opts, lim: opts.Limits.withDefaults(), sink: sink,
		defs: map[string]*definition{},
		rng:  rand.New(rand.NewPCG(opts.RandomSeed, 0x6b65_6570_616c_6976)),
	}
	for _, d := range predefined() {
		p.defs[d.name] = d
	}
	return p
}

func (p *preprocessor) pos(l loc) Pos {
	if int(l.file) >= len(p.files) {
		return Pos{}
	}
	return Pos{File: p.files[l.file], Line: int(l.line), Col: int(l.col)}
}

func (p *preprocessor) note(at Pos, kind FindingKind, keyword, format string, args ...any) {
	p.findings = append(p.findings, Finding{Pos: at, Kind: kind, Keyword: keyword, Message: fmt.Sprintf(format, args...)})
}

// readFile reads one file; from is the include line that names it (zero for the main file).
func (p *preprocessor) readFile(name string, from Pos) error {
	at := from
	if at.File == "" {
		at = Pos{File: name}
	}
	if len(p.stack) >= p.lim.IncludeDepth {
		return errorAt(at, ErrLimit, "include %s: files nest deeper than %d", name, p.lim.IncludeDepth)
	}
	for i, open := range p.stack {
		if open == name {
			chain := append(append([]string(nil), p.stack[i:]...), name)
			return errorAt(at, ErrInclude, "include cycle: %s", strings.Join(chain, " -> "))
		}
	}
	if len(p.files) >= p.lim.Files {
		return errorAt(at, ErrLimit, "include %s: more than %d files", name, p.lim.Files)
	}
	data, err := p.readBounded(name)
	if err != nil {
		if errors.Is(err, ErrLimit) {
			return causedAt(at, ErrLimit, err, "read %s", name)
		}
		return causedAt(at, ErrInclude, err, "read %s", name)
	}
	idx := int32(len(p.files))
	p.files = append(p.files, name)
	p.stack = append(p.stack, name)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()

	src := &source{name: name}
	lineNo := int32(0)
	for len(data) > 0 {
		raw := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			raw, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		lineNo++
		raw = bytes.TrimRight(raw, "\r")
		if i := bytes.IndexByte(raw, 0); i >= 0 {
			return errorAt(Pos{File: name, Line: int(lineNo), Col: i + 1}, ErrSyntax, "NUL byte in the line")
		}
		if err := p.physical(src, idx, lineNo, raw); err != nil {
			return err
		}
	}
	return p.endOfFile(src)
}

func (p *preprocessor) readBounded(name string) ([]byte, error) {
	f, err := p.fsys.Open(fsPath(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fmt.Errorf("%s is a directory: %w", name, fs.ErrInvalid)
	}
	data, err := io.ReadAll(io.LimitReader(f, p.lim.FileBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > p.lim.FileBytes {
		return nil, fmt.Errorf("larger than %d bytes: %w", p.lim.FileBytes, ErrLimit)
	}
	return data, nil
}

// physical handles one line as read from the file.
func (p *preprocessor) physical(src *source, file, lineNo int32, raw []byte) error {
	if len(raw) == 0 {
		// An empty line ends a multi-line definition, as in keepalived.
		p.endCapture(src)
		return p.flushJoin(src)
	}
	t, cont := decomment(raw, file, lineNo)
	if src.capture != nil {
		if t.len() > 0 {
			src.capture.lines = append(src.capture.lines, t)
		}
		if !cont {
			p.endCapture(src)
		}
		return nil
	}
	if t.len() == 0 && !cont {
		return nil // a comment
	}
	if src.joining {
		t = src.joined.join(t)
		src.joining = false
	}
	if cont && !isDefinitionLine(t) {
		src.joined, src.joining = t, true
		return nil
	}
	return p.logical(src, t, cont)
}

func (p *preprocessor) endCapture(src *source) {
	if src.capture != nil && len(src.capture.lines) == 0 {
		src.capture.multiline = false // "$X= \" then nothing: an empty value
	}
	src.capture = nil
}

func (p *preprocessor) flushJoin(src *source) error {
	if !src.joining {
		return nil
	}
	src.joining = false
	return p.logical(src, src.joined, false)
}

func (p *preprocessor) endOfFile(src *source) error {
	p.endCapture(src)
	return p.flushJoin(src)
}

// logical handles a line of the file once comments and continuations are dealt with.
// Includes are recognised here, before conditionals and parameters, as keepalived does.
func (p *preprocessor) logical(src *source, t text, cont bool) error {
	if kind, pattern, ok := includeDirective(t); ok {
		return p.include(src, kind, pattern, p.pos(t.locAt(0)))
	}
	capture, err := p.process(src, t, cont, 0)
	if err != nil {
		return err
	}
	src.capture = capture
	return nil
}

// process applies conditionals, definitions, generators and parameter expansion to one
// line, and hands what is left to the sink. It returns the definition whose further lines
// follow, for a multi-line definition.
func (p *preprocessor) process(src *source, t text, cont bool, depth int) (*definition, error) {
	if depth > p.lim.ExpansionDepth {
		return nil, errorAt(p.pos(t.locAt(0)), ErrLimit, "parameters and generators nest deeper than %d", p.lim.ExpansionDepth)
	}
	t = t.trimLeft()
	if t.len() == 0 {
		return discarded(cont), nil
	}
	if t.b[0] == '@' {
		rest, keep := p.conditional(t)
		if !keep {
			return discarded(cont), nil
		}
		t = rest
		if t.len() == 0 {
			return discarded(cont), nil
		}
	}
	if t.b[0] == '$' {
		if d, ok := p.define(t, cont); ok {
			if d.multiline {
				return d, nil
			}
			return nil, nil
		}
	}
	if cont {
		return nil, errorAt(p.pos(t.locAt(t.len())), ErrSyntax, "a line ending in a backslash is continued only by a $NAME= definition here")
	}
	if t.hasPrefix("~SEQ") || t.hasPrefix("~LST") {
		return nil, p.generate(src, t, depth)
	}
	if t.b[0] != '~' && bytes.IndexByte(t.b, '$') >= 0 {
		first, tail, changed, err := p.expand(src, t)
		if err != nil {
			return nil, err
		}
		if changed {
			// The result may be a conditional or a generator in its turn (keepalived's
			// man page: "$IF_MAIN=@main").
			if _, err := p.process(src, first, false, depth+1); err != nil {
				return nil, err
			}
			for _, l := range tail {
				if _, err := p.process(src, l.clone(), false, depth+1); err != nil {
					return nil, err
				}
			}
			return nil, nil
		}
	}
	return nil, p.emit(t)
}

// discarded swallows the further lines of a multi-line definition that a conditional
// left out.
func discarded(cont bool) *definition {
	if cont {
		return &definition{multiline: true}
	}
	return nil
}

// conditional handles "@id rest" and "@^id rest" against the config id.
func (p *preprocessor) conditional(t text) (text, bool) {
	ofs, negate := 1, false
	if t.len() > 1 && t.b[1] == '^' {
		ofs, negate = 2, true
	}
	end := bytes.IndexAny(t.b[ofs:], " \t")
	if end < 0 {
		return text{}, false // nothing after the id: keepalived drops the line
	}
	id := string(t.b[ofs : ofs+end])
	match := p.opts.ConfigID != "" && id == p.opts.ConfigID
	if match == negate {
		return text{}, false
	}
	return t.slice(ofs+end, t.len()).trimLeft(), true
}

// isDefinitionLine reports whether a line (maybe behind a conditional) defines a
// parameter, so that a trailing backslash starts a multi-line value.
func isDefinitionLine(t text) bool {
	b := t.b
	if len(b) > 0 && b[0] == '@' {
		i := bytes.IndexAny(b, " \t")
		if i < 0 {
			return false
		}
		b = bytes.TrimLeft(b[i:], " \t")
	}
	_, _, ok := definitionName(b)
	return ok
}

// definitionName reads "$NAME=": no blank may stand before the '='.
func definitionName(b []byte) (name string, valueAt int, ok bool) {
	if len(b) < 3 || b[0] != '$' || !isNameStart(b[1]) {
		return "", 0, false
	}
	k := 2
	for k < len(b) && isNameByte(b[k]) {
		k++
	}
	if k >= len(b) || b[k] != '=' {
		return "", 0, false
	}
	return string(b[1:k]), k + 1, true
}

func (p *preprocessor) define(t text, cont bool) (*definition, bool) {
	name, at, ok := definitionName(t.b)
	if !ok {
		return nil, false
	}
	d := &definition{name: name, multiline: cont}
	if v := t.slice(at, t.len()).trimLeft(); v.len() > 0 {
		d.lines = []text{v.clone()}
	}
	p.defs[name] = d // a user's definition overrides a predefined one, as in keepalived
	return d, true
}

// emit hands a finished line to the sink, within the bounds.
func (p *preprocessor) emit(t text) error {
	at := p.pos(t.locAt(0))
	p.lines++
	p.bytes += int64(t.len())
	switch {
	case p.lines > p.lim.Lines:
		return errorAt(at, ErrLimit, "more than %d lines (generators and parameters included)", p.lim.Lines)
	case p.bytes > p.lim.TotalBytes:
		return errorAt(at, ErrLimit, "more than %d bytes of configuration (generators and parameters included)", p.lim.TotalBytes)
	case t.len() > p.lim.LineBytes:
		return errorAt(at, ErrLimit, "a line longer than %d bytes", p.lim.LineBytes)
	}
	if _, _, ok := includeDirective(t); ok {
		return errorAt(at, ErrSyntax, "an include must stand on a line of its own: keepalived reads includes before conditionals, parameters and generators, so it would not include this one")
	}
	return p.sink(t)
}
