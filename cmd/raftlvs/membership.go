package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/fsm"
)

func newJoinCmd() *cobra.Command {
	var d fsm.Director
	var via string
	cmd := &cobra.Command{
		Use:   "join --id ID --raft ADDR --api ADDR [--gossip ADDR] [--via ADDR[,ADDR…]]",
		Short: "Add a director to the cluster (through any director)",
		Long: `Add a director to the cluster. --api is the new director's own API address here;
the request goes to the directors named by --via (default: RAFTLVS_API, else ` + defaultAPI + `).`,
		Args: exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			if err := clientAt(cmd, via).Join(ctxOf(cmd), d); err != nil {
				return fmt.Errorf("join %s: %w", d.ID, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "director %s joined\n", d.ID)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&d.ID, "id", "", "id of the new director")
	f.StringVar(&d.RaftAddr, "raft", "", "its Raft address (host:port)")
	// This --api shadows the global one: in join it is the new director's address, and
	// --via names the director to talk to.
	f.StringVar(&d.APIAddr, "api", "", "its HTTP API address (host:port)")
	f.StringVar(&via, "via", apiFromEnv(), "director API address(es) to send the join to")
	f.StringVar(&d.GossipAddr, "gossip", "", "its gossip address (host:port)")
	for _, name := range []string{"id", "raft", "api"} {
		_ = cmd.MarkFlagRequired(name) // the flags exist: registered just above
	}
	return cmd
}

func newLeaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "leave ID",
		Short: "Remove a director from the cluster (a leader hands over first)",
		Args:  exactArgs(1, "the director ID"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if err := clientFor(cmd).Leave(ctxOf(cmd), args[0]); err != nil {
				return fmt.Errorf("leave %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "director %s removed\n", args[0])
			return nil
		}),
	}
}

func newTransferCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "transfer [ID]",
		Short: "Move leadership to director ID, or to the most up-to-date voter",
		Args:  rangeArgs(0, 1, "at most one director ID"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			if err := clientFor(cmd).TransferLeadership(ctxOf(cmd), id); err != nil {
				return fmt.Errorf("transfer leadership: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "leadership transferred")
			return nil
		}),
	}
}
