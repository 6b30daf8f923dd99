package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
)

func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Join and operator tokens: create, ls, rm (admin)",
		Long: `Tokens, kubeadm-style: rlv1.<id>.<secret>.<ca-sha256>. A token carries a secret and the
fingerprint of the cluster CA, so whoever holds it pins the CA on first contact.

  director  joins one director: raftlvs director --join ADDR --token T (single-use)
  agent     certifies real-server agents: raftlvs agent --join ADDR --token T (until it expires)
  operator  is an API credential with an access level: RAFTLVS_TOKEN=T raftlvs status

The cluster stores only the secret's SHA-256; the token is printed once.`,
	}
	cmd.AddCommand(newTokenCreateCmd(), newTokenListCmd(), newTokenRemoveCmd())
	return cmd
}

func newTokenCreateCmd() *cobra.Command {
	var req api.TokenRequest
	var networks []string
	var output string
	cmd := &cobra.Command{
		Use:   "create --role director|agent|operator [--access read|operate|admin] [--ttl 24h]",
		Short: "Make a token and print it (once)",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			for _, n := range networks {
				p, err := netip.ParsePrefix(n)
				if err != nil {
					return usagef("--network: %v", err)
				}
				req.Networks = append(req.Networks, p)
			}
			if req.TTL == "0s" {
				req.TTL = "0"
			}
			res, err := clientFor(cmd).CreateToken(ctxOf(cmd), req)
			if err != nil {
				return fmt.Errorf("create token: %w", err)
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Token)
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&req.Role, "role", "", "director, agent or operator")
	f.StringVar(&req.Access, "access", "", "operator tokens: read, operate or admin")
	f.StringVar(&req.TTL, "ttl", "24h", "lifetime (0: never expires)")
	f.StringArrayVar(&networks, "network", nil, "agent tokens: a network (CIDR) the certified addresses may be in (repeatable; default: only the address the agent connects from)")
	f.StringVar(&req.Description, "description", "", "what the token is for")
	f.StringVarP(&output, "output", "o", "text", "text (the token alone) or json")
	_ = cmd.MarkFlagRequired("role") // registered just above
	return cmd
}

func newTokenListCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List tokens (never their secrets)",
		Args:    exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			list, err := clientFor(cmd).Tokens(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("list tokens: %w", err)
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(api.TokenList{Tokens: list})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tACCESS\tSTATE\tEXPIRES\tUSED BY\tDESCRIPTION")
			for _, t := range list {
				expires := "never"
				if !t.Expires.IsZero() {
					expires = t.Expires.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Role, dash(t.Access), t.State, expires, dash(t.UsedBy), t.Description)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func newTokenRemoveCmd() *cobra.Command {
	var forget bool
	cmd := &cobra.Command{
		Use:     "rm ID|TOKEN...",
		Aliases: []string{"revoke"},
		Short:   "Revoke tokens (--forget also deletes their records)",
		Args:    cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c := clientFor(cmd)
			for _, a := range args {
				id := a
				if parts := strings.Split(a, "."); len(parts) == 4 {
					id = parts[1] // a whole token was pasted: its id
				}
				if err := c.RevokeToken(ctxOf(cmd), id, forget); err != nil {
					return fmt.Errorf("revoke token %s: %w", id, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", id)
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&forget, "forget", false, "delete the records too (a revoked token stays listed otherwise)")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
