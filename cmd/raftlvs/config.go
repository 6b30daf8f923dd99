package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// configured is a daemon command's body: the --config file under the flags, then run.
func configured[T any](cfg *T, run func(context.Context, *T) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		if err := loadConfig(cmd, cfg); err != nil {
			return err
		}
		return run(cmd.Context(), cfg)
	}
}

// loadConfig fills cfg from the YAML (or JSON) file named by --config, if any, then lets
// every flag given on the command line override it. cfg's fields are bound to the flags,
// so the defaults, the file and the command line meet in one struct. Field names in the
// file are the flag names with '-' as '_' (see the json tags); unknown keys are an error.
func loadConfig(cmd *cobra.Command, cfg any) error {
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		return nil
	}
	// Remember what the command line said, to say it again over the file's values.
	var again []func() error
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if f.Name == "config" {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			vals := sv.GetSlice()
			again = append(again, func() error { return sv.Replace(vals) })
			return
		}
		v := f.Value.String()
		again = append(again, func() error { return f.Value.Set(v) })
	})
	data, err := os.ReadFile(path)
	if err != nil {
		return usagef("read config: %v", err)
	}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		return usagef("config %s: %v", path, err)
	}
	for _, set := range again {
		if err := set(); err != nil {
			return usagef("flag over config %s: %v", path, err)
		}
	}
	return nil
}

// addrList is a list of addresses: a flag takes ADDR[,ADDR…], a config file a string of
// that form or a list.
type addrList []string

func (l *addrList) String() string { return strings.Join(*l, ",") }
func (l *addrList) Type() string   { return "addrs" }

func (l *addrList) Set(s string) error {
	*l = nil
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			*l = append(*l, a)
		}
	}
	return nil
}

func (l *addrList) UnmarshalJSON(b []byte) error {
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*l = list
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a list of addresses or ADDR[,ADDR…]: %w", err)
	}
	return l.Set(s)
}

// newLogger is the daemons' one logger: text lines on stderr at the given level.
func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usagef("log level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// duration is a time.Duration that a config file writes as "500ms" or "2s", and a flag
// as the same.
type duration time.Duration

func (d *duration) String() string { return time.Duration(*d).String() }
func (d *duration) Type() string   { return "duration" }

func (d *duration) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = duration(v)
	return nil
}

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"500ms\" or \"2s\": %w", err)
	}
	return d.Set(s)
}

// durationFlag defines a duration flag bound to d with a default.
func durationFlag(f *pflag.FlagSet, d *duration, name string, def time.Duration, usage string) {
	*d = duration(def)
	f.Var(d, name, usage)
}
