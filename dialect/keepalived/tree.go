package keepalived

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Word is a word of the configuration and where it starts.
type Word struct {
	Text string `json:"text"`
	Pos  Pos    `json:"pos"`
}

// Node is a statement: a keyword, its arguments and, if it has one, its { } block. Lines of
// a value block (virtual_ipaddress, a virtual_server_group) are nodes too: their first word
// is the Name.
type Node struct {
	Name     Word    `json:"name"`
	Args     []Word  `json:"args,omitempty"`
	HasBlock bool    `json:"has_block,omitempty"`
	Block    []*Node `json:"block,omitempty"`
	Open     Pos     `json:"open,omitzero"`  // the '{'
	Close    Pos     `json:"close,omitzero"` // the '}'
}

// Pos is where the statement starts.
func (n *Node) Pos() Pos { return n.Name.Pos }

// Config is a parsed keepalived.conf: its top-level statements, the files read (the main
// file first, includes in the order read) and what the preprocessor noted on the way.
type Config struct {
	Nodes    []*Node
	Files    []string
	Findings []Finding
}

// DefaultConfigID is keepalived's config id when -i is not given: the host name up to its
// first dot.
func DefaultConfigID() string {
	h, _ := os.Hostname()
	name, _, _ := strings.Cut(h, ".")
	return name
}

// Options steer the preprocessor.
type Options struct {
	// ConfigID is matched by @id and @^id lines (keepalived's -i). Empty matches no @id
	// line; keepalived's own default is DefaultConfigID().
	ConfigID string
	// LookupEnv serves ${_ENV NAME}; nil treats every variable as unset.
	LookupEnv func(string) (string, bool)
	// RandomSeed seeds ${_RANDOM}, so that an import is reproducible.
	RandomSeed uint64
	Limits     Limits
}

// Parse reads the configuration file name (an absolute slash path within fsys, whose root
// stands for "/") and the files it includes, and builds the tree of statements. It checks
// the syntax only; Translate checks the keywords and values.
func Parse(fsys fs.FS, name string, opts Options) (*Config, error) {
	if !path.IsAbs(name) {
		name = "/" + name
	}
	name = path.Clean(name)
	b := &builder{limit: opts.Limits.withDefaults().BlockDepth}
	p := newPreprocessor(fsys, opts, nil)
	b.pos = p.pos
	p.sink = b.line
	if err := p.readFile(name, Pos{}); err != nil {
		return nil, err
	}
	if err := b.finish(); err != nil {
		return nil, err
	}
	return &Config{Nodes: b.root, Files: p.files, Findings: p.findings}, nil
}

// ParseFile is Parse on the machine's own files: file may be relative to the working
// directory.
func ParseFile(file string, opts Options) (*Config, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return Parse(os.DirFS("/"), filepath.ToSlash(abs), opts)
}

// builder assembles statements into the tree, one logical line at a time. A '{' opens the
// block of the statement on its line, or of the previous statement when it starts the
// line (keepalived lets the brace go on the next line); a '}' ends the innermost block.
type builder struct {
	root  []*Node
	stack []*Node // open blocks, outermost first
	last  *Node   // the last statement of the current level, for a '{' on its own line
	limit int
	pos   func(loc) Pos
}

func (b *builder) level() *[]*Node {
	if len(b.stack) == 0 {
		return &b.root
	}
	return &b.stack[len(b.stack)-1].Block
}

func (b *builder) line(t text) error {
	toks, err := tokenize(t, b.pos)
	if err != nil {
		return err
	}
	var cur *Node
	for _, tok := range toks {
		at := b.pos(tok.at)
		switch tok.kind {
		case tokWord:
			if cur == nil {
				cur = &Node{Name: Word{Text: tok.text, Pos: at}}
				lv := b.level()
				*lv = append(*lv, cur)
				continue
			}
			cur.Args = append(cur.Args, Word{Text: tok.text, Pos: at})
		case tokOpen:
			target := cur
			if target == nil {
				target = b.last
			}
			if target == nil || target.HasBlock {
				return errorAt(at, ErrSyntax, "'{' with no keyword before it")
			}
			if len(b.stack) >= b.limit {
				return errorAt(at, ErrLimit, "blocks nest deeper than %d", b.limit)
			}
			target.HasBlock, target.Open = true, at
			if target.Block == nil {
				target.Block = []*Node{}
			}
			b.stack = append(b.stack, target)
			cur, b.last = nil, nil
		case tokClose:
			if len(b.stack) == 0 {
				return errorAt(at, ErrSyntax, "'}' closes no block")
			}
			n := b.stack[len(b.stack)-1]
			b.stack = b.stack[:len(b.stack)-1]
			n.Close = at
			cur, b.last = nil, n
		}
	}
	if cur != nil {
		b.last = cur
	}
	return nil
}

func (b *builder) finish() error {
	if len(b.stack) > 0 {
		n := b.stack[0]
		names := make([]string, len(b.stack))
		for i, s := range b.stack {
			names[i] = s.Name.Text
		}
		return errorAt(n.Open, ErrSyntax, "the block of %s is not closed at the end of the configuration (open: %s)", n.Name.Text, strings.Join(names, " > "))
	}
	return nil
}
