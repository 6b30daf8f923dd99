package keepalived

import (
	"net/netip"
	"strings"
	"sync"
)

// Reasons the report gives for what raftlvs leaves out.
const (
	whyVRRP       = "VRRP is not imported: raftlvs's Raft leader owns the virtual addresses of the services and moves them on failover (gratuitous ARP / unsolicited NA)"
	whyScript     = "raftlvs runs no notify or tracking scripts; watch the cluster's status API or metrics instead"
	whySNMP       = "raftlvs has no SNMP agent; it exports Prometheus metrics"
	whySMTP       = "raftlvs sends no e-mail alerts"
	whyDaemon     = "a setting of keepalived's own daemons, with no raftlvs counterpart"
	whyNamespace  = "raftlvs programs IPVS in the director's own network namespace"
	whyStatic     = "static addresses, routes and rules are the host's business, not raftlvs's"
	whyBFD        = "raftlvs has no BFD"
	whySSLContext = "raftlvs's https checks use no client certificate and do not verify the real server's certificate, as keepalived without SSL { ca } does"
)

// globalReasons are the global_defs keys with a reason of their own; every other known key
// is reported with whyDaemon. The key list is keepalived 2.4's (global_parser.c).
var globalReasons = map[string]string{
	"lvs_sync_daemon":               "raftlvs runs the IPVS connection-sync daemons itself: the master on the Raft leader, a backup on every director (syncid from the director's config)",
	"lvs_timeouts":                  "raftlvs does not set the IPVS connection timeouts; set them with ipvsadm --set on each director if needed",
	"lvs_flush":                     "raftlvs never flushes IPVS: it touches only the services it created",
	"lvs_flush_on_stop":             "raftlvs keeps the IPVS table when a director stops, so that a restart drops no connection",
	"lvs_flush_onstop":              "raftlvs keeps the IPVS table when a director stops, so that a restart drops no connection",
	"net_namespace_ipvs":            whyNamespace,
	"net_namespace":                 whyNamespace,
	"lvs_notify_fifo":               whyScript,
	"lvs_notify_fifo_script":        whyScript,
	"notify_fifo":                   whyScript,
	"notify_fifo_script":            whyScript,
	"vrrp_notify_fifo":              whyScript,
	"vrrp_notify_fifo_script":       whyScript,
	"startup_script":                whyScript,
	"shutdown_script":               whyScript,
	"script_user":                   whyScript,
	"enable_script_security":        whyScript,
	"notification_email":            whySMTP,
	"notification_email_from":       whySMTP,
	"smtp_server":                   whySMTP,
	"smtp_helo_name":                whySMTP,
	"smtp_connect_timeout":          whySMTP,
	"smtp_alert":                    whySMTP,
	"smtp_alert_vrrp":               whySMTP,
	"smtp_alert_checker":            whySMTP,
	"no_email_faults":               whySMTP,
	"no_checker_emails":             whySMTP,
	"enable_snmp_checker":           whySNMP,
	"enable_snmp_keepalived":        whySNMP,
	"enable_snmp_rfc":               whySNMP,
	"enable_snmp_rfcv2":             whySNMP,
	"enable_snmp_rfcv3":             whySNMP,
	"enable_snmp_vrrp":              whySNMP,
	"enable_traps":                  whySNMP,
	"snmp_socket":                   whySNMP,
	"snmp_rs_stats_update_interval": whySNMP,
	"snmp_vs_stats_update_interval": whySNMP,
	"nftables_ipvs":                 "raftlvs creates one IPVS service per address of a virtual_server_group, not nftables rules and a fwmark service",
	"checker_log_all_failures":      "raftlvs logs each health transition (and keeps the last reason in the state), not every failed probe",
	"random_seed":                   "${_RANDOM} is drawn from the importer's own seeded generator",
}

var globalKeys = strings.Fields(`bfd_cpu_affinity bfd_no_swap bfd_priority bfd_process_name bfd_rlimit_rtime
bfd_rlimit_rttime bfd_rt_priority checker_cpu_affinity checker_log_all_failures checker_no_swap
checker_priority checker_process_name checker_rlimit_rtime checker_rlimit_rttime checker_rt_priority
child_wait_time config_save_dir data_use_instance dbus_no_interface_name dbus_service_name
default_interface disable_local_igmp dynamic_interfaces enable_dbus enable_script_security
enable_snmp_checker enable_snmp_keepalived enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3
enable_snmp_vrrp enable_traps fifo_write_vrrp_states_on_reload include_check instance iproute_etc_dir
iproute_usr_dir json_dump_file json_version linkbeat_use_polling log_unknown_vrids lvs_flush
lvs_flush_on_stop lvs_flush_onstop lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force
lvs_netlink_monitor_rcv_bufs lvs_netlink_monitor_rcv_bufs_force lvs_notify_fifo lvs_notify_fifo_script
lvs_process_name lvs_sync_daemon lvs_timeouts max_auto_priority min_auto_priority_delay
namespace_with_ipsets net_namespace net_namespace_ipvs nftables nftables_counters nftables_ifindex
nftables_ipvs nftables_ipvs_priority nftables_ipvs_start_fwmark nftables_priority no_checker_emails
no_email_faults notification_email notification_email_from notify_fifo notify_fifo_script
process_monitor_rcv_bufs process_monitor_rcv_bufs_force process_name process_names random_seed
reload_check_config reload_file reload_repeat reload_time_file router_id rs_init_notifies script_user
set_supplementary_groups shutdown_script shutdown_script_timeout smtp_alert smtp_alert_checker
smtp_alert_vrrp smtp_connect_timeout smtp_helo_name smtp_server snmp_rs_stats_update_interval
snmp_socket snmp_vs_stats_update_interval startup_script startup_script_timeout state_dump_file
stats_dump_file tmp_config_directory umask use_pid_dir use_symlink_paths v3_checksum_as_v2
vmac_addr_prefix vmac_prefix vrrp_check_unicast_src vrrp_cpu_affinity vrrp_delay_after_boot
vrrp_down_timer_adverts vrrp_garp_extra_if vrrp_garp_interval vrrp_garp_lower_prio_delay
vrrp_garp_lower_prio_repeat vrrp_garp_master_delay vrrp_garp_master_refresh
vrrp_garp_master_refresh_repeat vrrp_garp_master_repeat vrrp_gna_interval vrrp_higher_prio_send_advert
vrrp_ipsets vrrp_iptables vrrp_lower_prio_no_advert vrrp_mcast_group4 vrrp_mcast_group6 vrrp_min_garp
vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs
vrrp_netlink_monitor_rcv_bufs_force vrrp_no_swap vrrp_notify_fifo vrrp_notify_fifo_script
vrrp_notify_priority_changes vrrp_owner_ignore_adverts vrrp_priority vrrp_process_name vrrp_rlimit_rtime
vrrp_rlimit_rttime vrrp_rt_priority vrrp_rx_bufs_multiplier vrrp_rx_bufs_policy vrrp_skip_check_adv_addr
vrrp_startup_delay vrrp_strict vrrp_version vrrp_vmac_garp_intvl`)

var (
	topOnce  sync.Once
	topTable table[*translator]
	globals  table[*translator]
)

func topKeywords() table[*translator] {
	topOnce.Do(func() {
		globals = table[*translator]{}
		for _, k := range globalKeys {
			why := globalReasons[k]
			if why == "" {
				why = whyDaemon
			}
			if strings.HasPrefix(k, "vrrp_") && globalReasons[k] == "" {
				why = whyVRRP
			}
			globals[k] = optionalBlock[*translator](why)
		}
		topTable = table[*translator]{
			"global_defs": {block: true, fn: func(t *translator, _ *translator, n *Node) {
				dispatch(t, "global_defs", globals, t, n.Block)
			}},
			"virtual_server_group":     {block: true, min: 1, max: 1, fn: (*translator).group},
			"virtual_server":           {block: true, min: 1, max: 2, fn: (*translator).virtualServer},
			"vrrp_instance":            {block: true, min: 1, max: 1, fn: (*translator).vrrpInstance},
			"vrrp_sync_group":          unmappedBlock[*translator](whyVRRP),
			"vrrp_script":              unmappedBlock[*translator](whyScript),
			"vrrp_track_file":          unmappedBlock[*translator](whyScript),
			"track_file":               unmappedBlock[*translator](whyScript),
			"vrrp_track_process":       unmappedBlock[*translator](whyScript),
			"track_group":              unmappedBlock[*translator](whyVRRP),
			"garp_group":               unmappedBlock[*translator](whyVRRP),
			"static_ipaddress":         unmappedBlock[*translator](whyStatic),
			"static_routes":            unmappedBlock[*translator](whyStatic),
			"static_rules":             unmappedBlock[*translator](whyStatic),
			"linkbeat_interfaces":      unmappedBlock[*translator](whyVRRP),
			"interface_up_down_delays": unmappedBlock[*translator](whyVRRP),
			"bfd_instance":             unmappedBlock[*translator](whyBFD),
			"SSL":                      unmappedBlock[*translator](whySSLContext),
			"net_namespace":            unmapped[*translator](1, 1, whyNamespace),
			"net_namespace_ipvs":       unmapped[*translator](0, 1, whyNamespace),
			"namespace_with_ipsets":    unmapped[*translator](0, 0, whyDaemon),
			"instance":                 unmapped[*translator](1, 1, whyDaemon),
			"use_pid_dir":              unmapped[*translator](0, 0, whyDaemon),
			"linkbeat_use_polling":     unmapped[*translator](0, 0, whyVRRP),
			"child_wait_time":          unmapped[*translator](1, 1, whyDaemon),
		}
	})
	return topTable
}

// top dispatches the top level. Groups are read in a first pass: a virtual_server may
// name a group defined further down, as in keepalived.
func (t *translator) top(nodes []*Node) {
	tbl := topKeywords()
	var rest []*Node
	for _, n := range nodes {
		if n.Name.Text == "virtual_server_group" {
			dispatch(t, "the top level", tbl, t, []*Node{n})
			continue
		}
		rest = append(rest, n)
	}
	dispatch(t, "the top level", tbl, t, rest)
}

// vrrpInstance reports the instance and collects the VIPs of its virtual_ipaddress blocks.
func (t *translator) vrrpInstance(_ *translator, n *Node) {
	name := n.Args[0].Text
	var found []string
	for _, c := range n.Block {
		if c.Name.Text != "virtual_ipaddress" && c.Name.Text != "virtual_ipaddress_excluded" {
			continue
		}
		for _, e := range c.Block {
			s := e.Name.Text
			if p, err := netip.ParsePrefix(s); err == nil {
				s = p.Addr().String()
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				t.report(e.Pos(), Note, c.Name.Text, "%q is not an address: left as it is", e.Name.Text)
				continue
			}
			t.vips = append(t.vips, VIP{Addr: a.Unmap(), Instance: name, Pos: e.Pos()})
			found = append(found, a.Unmap().String())
		}
	}
	msg := whyVRRP
	if len(found) > 0 {
		msg += "; its VIPs: " + strings.Join(found, " ")
	}
	t.report(n.Pos(), Unmapped, "vrrp_instance "+name, "%s", msg)
}
