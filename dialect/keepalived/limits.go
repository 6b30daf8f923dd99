package keepalived

// Limits bound what a configuration may make the parser do, so that a hostile or broken
// file (an include cycle through symlinks, a parameter that expands to itself, a ~SEQ over
// a billion values) ends in an ErrLimit error rather than exhausting memory. Zero fields
// take the defaults.
type Limits struct {
	IncludeDepth   int   // files open at once, the main file included (default 16)
	Files          int   // files read in all (default 1,000)
	FileBytes      int64 // bytes in one file (default 16 MiB)
	LineBytes      int   // bytes in one line after expansion (default 64 KiB)
	ExpansionDepth int   // nested multi-line expansions and generators (default 32)
	Replacements   int   // parameter replacements in all (default 1,000,000)
	Lines          int   // logical lines in all, generated ones included (default 1,000,000)
	TotalBytes     int64 // bytes of logical lines in all (default 64 MiB)
	BlockDepth     int   // nested { } blocks (default 32)
	Services       int   // services one plan may create, group ranges expanded (default 100,000)
	RealServers    int   // real servers one plan may create, in all its services (default 1,000,000)
	Errors         int   // errors Translate collects before it stops (default 50)
}

// DefaultLimits are generous for real configurations: keepalived's own man page example
// generates 65,024 vrrp_instances from one line, about 800,000 lines.
var DefaultLimits = Limits{
	IncludeDepth:   16,
	Files:          1000,
	FileBytes:      16 << 20,
	LineBytes:      64 << 10,
	ExpansionDepth: 32,
	Replacements:   1_000_000,
	Lines:          1_000_000,
	TotalBytes:     64 << 20,
	BlockDepth:     32,
	Services:       100_000,
	RealServers:    1_000_000,
	Errors:         50,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	pick := func(v, def int) int {
		if v > 0 {
			return v
		}
		return def
	}
	l.IncludeDepth = pick(l.IncludeDepth, d.IncludeDepth)
	l.Files = pick(l.Files, d.Files)
	if l.FileBytes <= 0 {
		l.FileBytes = d.FileBytes
	}
	l.LineBytes = pick(l.LineBytes, d.LineBytes)
	l.ExpansionDepth = pick(l.ExpansionDepth, d.ExpansionDepth)
	l.Replacements = pick(l.Replacements, d.Replacements)
	l.Lines = pick(l.Lines, d.Lines)
	if l.TotalBytes <= 0 {
		l.TotalBytes = d.TotalBytes
	}
	l.BlockDepth = pick(l.BlockDepth, d.BlockDepth)
	l.Services = pick(l.Services, d.Services)
	l.RealServers = pick(l.RealServers, d.RealServers)
	l.Errors = pick(l.Errors, d.Errors)
	return l
}
