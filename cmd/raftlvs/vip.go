package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
)

func newVIPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vip",
		Short: "Declare VIPs the leader holds without a service (keepalived's virtual_ipaddress)",
		Long: `A declared VIP is held by the Raft leader like a service's VIP: on the interface, announced
by gratuitous ARP / unsolicited NA, released first when leadership ends. Use it for a
proxy beside raftlvs (HAProxy, nginx, a Kubernetes API) and with VIP-only directors
(raftlvs director --vip-only). The address goes on the interface as a host address
(/32, /128); a length, as in keepalived's 10.0.0.100/24, names the VIP's subnet and is
checked and shown, not installed (director/vip/DESIGN.md says why).`,
	}
	cmd.AddCommand(newVIPAddCmd(), newVIPRemoveCmd(), newVIPListCmd())
	return cmd
}

func newVIPAddCmd() *cobra.Command {
	var req api.VIPRequest
	cmd := &cobra.Command{
		Use:   "add ADDR[/LEN] [--interface IF] [--name NAME]",
		Short: "Declare a VIP",
		Args:  exactArgs(1, "the VIP, ADDR or ADDR/LEN"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			req.Addr = args[0]
			if _, err := api.ParseVIP(req.Addr); err != nil {
				return usagef("%v", err)
			}
			info, err := clientFor(cmd).AddVIP(ctxOf(cmd), req)
			if err != nil {
				return fmt.Errorf("add VIP %s: %w", req.Addr, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "VIP %s declared on %s\n", info.Prefix, interfaceLabel(info.Interface))
			return nil
		}),
	}
	cmd.Flags().StringVar(&req.Interface, "interface", "", "interface that carries it (default: each director's --vip-interface)")
	cmd.Flags().StringVar(&req.Name, "name", "", "a label for operators")
	return cmd
}

func newVIPRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "rm ADDR",
		Aliases: []string{"remove"},
		Short:   "Forget a declared VIP (the leader releases it)",
		Args:    exactArgs(1, "the VIP's address"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			p, err := api.ParseVIP(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			if err := clientFor(cmd).RemoveVIP(ctxOf(cmd), p.Addr()); err != nil {
				return fmt.Errorf("remove VIP %s: %w", p.Addr(), err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "VIP %s removed\n", p.Addr())
			return nil
		}),
	}
}

func newVIPListCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List the VIPs the leader holds: declared ones and the services'",
		Args:    exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			vips, err := clientFor(cmd).VIPs(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("list VIPs: %w", err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VIP\tINTERFACE\tNAME\tFROM")
			for _, v := range vips {
				var from []string
				if v.Declared {
					from = append(from, "declared")
				}
				if len(v.Services) > 0 {
					from = append(from, "services "+strings.Join(v.Services, ","))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", vipLabel(v.Prefix), interfaceLabel(v.Interface), cmp.Or(v.Name, "-"), strings.Join(from, ", "))
			}
			return tw.Flush()
		}),
	}
}

// vipLabel writes a host prefix as the bare address.
func vipLabel(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func interfaceLabel(name string) string { return cmp.Or(name, "(--vip-interface)") }
