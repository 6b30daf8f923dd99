// Command raftlvs is the one binary of raftlvs: the director and agent daemons and the
// operator commands, which talk to any director's HTTP API.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the operation failed
	exitUsage = 2 // the command line is wrong
	// exitUnknown: a change reached a leader and no verdict came back (it lost its
	// leadership, or the commit outlasted the wait): it may or may not have been made.
	exitUnknown = 3
)

// defaultAPI is where the operator commands look for a director unless told otherwise.
const defaultAPI = "127.0.0.1:7080"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "raftlvs: %v\n", err)
	if errors.Is(err, api.ErrUnconfirmed) {
		fmt.Fprintln(stderr, "raftlvs: (reads ask the leader first, so as never to show a table older than the last write; --stale reads a director's replica as it is)")
	}
	if errors.Is(err, api.ErrOutcomeUnknown) {
		fmt.Fprintln(stderr, "raftlvs: the outcome is unknown: the change may or may not have been made; read the state (raftlvs status, save) before sending it again")
		return exitUnknown
	}
	return exitCode(err)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "raftlvs",
		Short:         "Highly available IPVS load balancing, replicated through Raft",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().String("api", apiFromEnv(), "director API address(es), ADDR[,ADDR…] tried in order (env RAFTLVS_API)")
	root.PersistentFlags().Duration("timeout", api.DefaultClientTimeout, "bound on each API request")
	root.PersistentFlags().Bool("stale", false, "read the answering director's replica as it is, without first asking the leader for the latest state version (works without a leader; may miss the latest writes)")
	credentialFlags(root)
	// Credentials are checked before an operator command runs, so a missing one is said
	// once, plainly; the daemons and offline commands take none.
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if cmd.Annotations["credentials"] == "none" {
			return nil
		}
		_, err := apiClient(cmd, nil)
		return err
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newStatusCmd(),
		newHealthCmd(),
		newEventsCmd(),
		newServiceCmd(),
		newServerCmd(),
		newVIPCmd(),
		newJoinCmd(),
		newLeaveCmd(),
		newTransferCmd(),
		newSaveCmd(),
		newRestoreCmd(),
		newImportCmd(),
		newExportCmd(),
		newDiffCmd(),
		newApplyCmd(),
		newDirectorCmd(),
		newAgentCmd(),
		newTokenCmd(),
	)
	return root
}

// apiFromEnv is the default of --api: RAFTLVS_API, else defaultAPI.
func apiFromEnv() string {
	if env := os.Getenv("RAFTLVS_API"); env != "" {
		return env
	}
	return defaultAPI
}

// clientFor builds the API client from the global flags.
func clientFor(cmd *cobra.Command) *api.Client {
	return clientAt(cmd, cmd.Flag("api").Value.String())
}

// clientAt builds an API client for a comma-separated list of director addresses.
func clientAt(cmd *cobra.Command, list string) *api.Client {
	var addrs []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	c, err := apiClient(cmd, addrs)
	if err != nil {
		c = api.NewClient(addrs...)
		c.HTTP.Transport = failingTransport{err}
	}
	if d, err := time.ParseDuration(cmd.Flag("timeout").Value.String()); err == nil && d > 0 {
		c.Timeout = d
	}
	// Every read sees every write acknowledged before it (a restore, then a save through
	// a follower that has not applied it yet), unless --stale.
	c.Consistent = cmd.Flag("stale").Value.String() != "true"
	return c
}

func ctxOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// usageError is a wrong command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// opError is an operation that failed (exit 1).
type opError struct{ err error }

func (e opError) Error() string { return e.err.Error() }
func (e opError) Unwrap() error { return e.err }

// runE marks what a command's own code returns as an operational failure, unless it says
// it is a usage error; whatever cobra rejects before running it is a usage error.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var ue usageError
		if err == nil || errors.As(err, &ue) {
			return err
		}
		return opError{err}
	}
}

func exitCode(err error) int {
	var oe opError
	if errors.As(err, &oe) {
		return exitError
	}
	return exitUsage
}

// args validators that report usage errors.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("want %s, got %d argument(s)", names, len(args))
		}
		return nil
	}
}

func rangeArgs(lo, hi int, names string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("want %s, got %d argument(s)", names, len(args))
		}
		return nil
	}
}
