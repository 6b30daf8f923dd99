package gossip

import (
	"bytes"
	"context"
	"log"
	"log/slog"
)

// newStdLogger bridges memberlist's *log.Logger to slog. memberlist prefixes each line
// with "[DEBUG]", "[INFO]", "[WARN]" or "[ERR]"; mapping the prefix to a level keeps its
// chatty per-connection debug lines out of an info-level log.
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(levelWriter{l: l.With("component", "memberlist")}, "", 0)
}

type levelWriter struct{ l *slog.Logger }

var levelPrefixes = []struct {
	prefix []byte
	level  slog.Level
}{
	{[]byte("[DEBUG] "), slog.LevelDebug},
	{[]byte("[INFO] "), slog.LevelInfo},
	{[]byte("[WARN] "), slog.LevelWarn},
	{[]byte("[ERR] "), slog.LevelError},
	{[]byte("[ERROR] "), slog.LevelError},
}

func (w levelWriter) Write(p []byte) (int, error) {
	msg, level := bytes.TrimRight(p, "\n"), slog.LevelInfo
	for _, lp := range levelPrefixes {
		if rest, ok := bytes.CutPrefix(msg, lp.prefix); ok {
			msg, level = rest, lp.level
			break
		}
	}
	msg = bytes.TrimPrefix(msg, []byte("memberlist: "))
	w.l.Log(context.Background(), level, string(msg))
	return len(p), nil
}
