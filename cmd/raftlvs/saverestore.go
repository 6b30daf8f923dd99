package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/fsm"
)

func newSaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "save",
		Short: "Print the services and real servers as `ipvsadm -Sn` does",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			st, err := clientFor(cmd).State(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("save: %w", err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if err := ipvsadm.New(st.Services, st.RealServers).Write(w); err != nil {
				return fmt.Errorf("save: %w", err)
			}
			return w.Flush()
		}),
	}
}

func newRestoreCmd() *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "restore [FILE|-]",
		Short: "Apply rules in `ipvsadm -Sn` format, all or nothing",
		Long: `Apply rules in the format of ipvsadm -Sn (ipvsadm-save -n), read from FILE or
standard input, as one atomic batch: a bad line rejects the whole input, with its line
number, and nothing is applied. --replace removes every existing service in the same batch.`,
		Args: rangeArgs(0, 1, "at most one FILE"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			src := "standard input"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("restore: %w", err)
				}
				defer f.Close()
				in, src = f, args[0]
			}
			n, err := restore(cmd, in, replace)
			if err != nil {
				return fmt.Errorf("restore from %s: %w", src, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %d commands from %s\n", n, src)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "remove every existing service first, in the same batch")
	return cmd
}

func restore(cmd *cobra.Command, in io.Reader, replace bool) (int, error) {
	rules, err := ipvsadm.Parse(in)
	if err != nil {
		return 0, err
	}
	c := clientFor(cmd)
	// One batch is one log entry every director stores and applies: give the leader the
	// whole of its bound before giving up on the answer.
	c.Timeout = max(c.Timeout, api.BatchTimeout+10*time.Second)
	var cmds []api.BatchCommand
	if replace {
		// Read now, removed in the batch: a service added meanwhile survives, and one
		// removed meanwhile fails the batch (not found) rather than anything half-done.
		st, err := c.State(ctxOf(cmd))
		if err != nil {
			return 0, err
		}
		for _, s := range st.Services {
			cmds = append(cmds, api.BatchCommand{Op: api.OpRemoveService, Name: s.Name})
		}
	}
	for _, fc := range rules.Commands() {
		bc, err := api.BatchCommandFor(fc)
		if err != nil {
			return 0, err
		}
		cmds = append(cmds, bc)
	}
	if len(cmds) == 0 {
		return 0, fmt.Errorf("no rules in the input: %w", fsm.ErrInvalid)
	}
	res, err := c.Batch(ctxOf(cmd), cmds)
	if err != nil {
		return 0, err
	}
	return res.Applied, nil
}
