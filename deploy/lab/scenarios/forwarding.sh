#!/bin/bash
# forwarding — NAT, DR and TUN through a three-director raftlvs cluster on real IPVS.
# Services are added with the operator CLI (wrr, weights 1/2/3); then, on every director
# (leader and followers), `ipvsadm -Sn` must equal the expected rules and `raftlvs save`;
# and 60 GETs through each VIP must be spread 10/20/30 over rs1/rs2/rs3.
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh

lab_log "building the topology (client, d1-d3, rs1-rs3 on br0)"
rl_topology
rl_rs_dr_tun $RL_RS
rl_cluster

lab_log "adding three services through the CLI"
declare -A FWD=([nat]=-m [dr]=-g [tun]=-i)
declare -A TUNTYPE=([nat]="" [dr]="" [tun]=" --tun-type ipip")
declare -A VIP=([nat]=$RL_NAT_VIP [dr]=$RL_DR_VIP [tun]=$RL_TUN_VIP)
want=$LAB_RUN/want.rules
: >"$want"
for mode in nat dr tun; do
	lab_step "service add web-$mode (${VIP[$mode]}:80, wrr, $mode)" \
		rl_cli service add -t "${VIP[$mode]}:80" -s wrr --forward "$mode" --name "web-$mode"
	echo "-A -t ${VIP[$mode]}:80 -s wrr" >>"$want"
	w=0
	for rs in $RL_RS; do
		w=$((w + 1))
		addr=${RL_IP[$rs]}
		[ "$mode" = nat ] && addr=${RL_NAT_IP[$rs]}
		lab_step "server add web-$mode $addr:80 -w $w" rl_cli server add "web-$mode" "$addr:80" -w "$w"
		# ipvsadm 1.31 on a kernel >= 5.3 spells out the (default) tunnel type.
		echo "-a -t ${VIP[$mode]}:80 -r $addr:80 ${FWD[$mode]} -w $w${TUNTYPE[$mode]}" >>"$want"
	done
done
sort -o "$want" "$want"

# Every director reconciles its own table from the replicated state.
if lab_wait_for "rl_ipvs_equal $want $RL_DIRECTORS" "$RL_BOUND" 0.5; then
	lab_pass "every director programmed the 3 services and 9 real servers"
fi
rl_check_ipvs "$want" "the expected rules" $RL_DIRECTORS
rl_cli save | sort >"$LAB_RUN/save.rules"
sort "$want" >"$LAB_RUN/want-save.rules"
lab_check "raftlvs save equals the expected rules" cmp -s "$LAB_RUN/save.rules" "$LAB_RUN/want-save.rules" ||
	diff "$LAB_RUN/want-save.rules" "$LAB_RUN/save.rules"

# The leader, whichever it is once the cluster agrees, holds the three VIPs, no one else.
vips_on_leader() {
	local l
	l=$(rl_all_agree_leader $RL_DIRECTORS) || return 1
	test "$(rl_vip_holder $RL_NAT_VIP)/$(rl_vip_holder $RL_DR_VIP)/$(rl_vip_holder $RL_TUN_VIP)" = "$l/$l/$l"
}
lab_check "the leader holds the three VIPs, no one else does" lab_wait_for vips_on_leader "$RL_BOUND" 0.5
leader=$(rl_all_agree_leader $RL_DIRECTORS)

# wrr over 60 new connections with weights 1/2/3: exactly 10/20/30. The count is one
# director's wrr cycle: if leadership moved meanwhile (a starved VM), count again.
for mode in nat dr tun; do
	for try in 1 2 3; do
		term=$(rl_json "$leader" .node.term)
		counts=$(lab_fetch_counts client "http://${VIP[$mode]}/" 60 | tr '\n' ' ')
		[ "$(rl_json "$leader" .node.term)/$(rl_json "$leader" .node.state)" = "$term/Leader" ] && break
		lab_log "leadership moved during the $mode count (try $try): counting again"
		lab_wait_for vips_on_leader "$RL_BOUND" 0.5
		leader=$(rl_all_agree_leader $RL_DIRECTORS)
	done
	lab_check "$mode: 60 GETs through ${VIP[$mode]} spread 10/20/30 [$counts]" \
		test "$counts" = "rs1 10 rs2 20 rs3 30 "
done

# The leader's /metrics, read from its real IPVS: per real server of each service, the
# connections just counted (at least 10/20/30) and the weight, with node_exporter's labels.
# The kernel sums its per-CPU counters every 2 s (its rate estimator), so they may lag the
# traffic by that much: the scrape is retried, bounded.
metrics=$LAB_RUN/metrics.txt
metric() { # NAME [LABELS]: the value of one series of $metrics, empty if absent
	awk -v k="$1${2:+{$2\}}" '$1 == k { print $2 }' "$metrics"
}
metrics_say() { # MODE: "yes", or what is wrong with MODE's series in $metrics
	local mode=$1 w=0 rs addr labels conns weight
	for rs in $RL_RS; do
		w=$((w + 1))
		addr=${RL_IP[$rs]}
		[ "$mode" = nat ] && addr=${RL_NAT_IP[$rs]}
		labels="local_address=\"${VIP[$mode]}\",local_mark=\"\",local_port=\"80\",proto=\"TCP\",remote_address=\"$addr\",remote_port=\"80\",service=\"web-$mode\""
		conns=$(metric raftlvs_ipvs_backend_connections_total "$labels")
		weight=$(metric raftlvs_ipvs_backend_weight "$labels")
		if [ -z "$conns" ] || [ "${conns%%.*}" -lt $((10 * w)) ] || [ "$weight" != "$w" ]; then
			echo "no: $addr connections_total=${conns:-absent} weight=${weight:-absent}"
			return
		fi
	done
	echo yes
}
# Scraped as Prometheus would: a read token, the cluster's CA.
scrape_token=$(rl_token operator --access read --description prometheus) || lab_die "no read token for the scrape"
scrape_ok() {
	rl_get "$leader" /metrics -H "Authorization: Bearer $scrape_token" >"$metrics" || return 1
	[ "$(metrics_say nat)/$(metrics_say dr)/$(metrics_say tun)" = yes/yes/yes ]
}
lab_wait_for scrape_ok "$RL_BOUND" 1
for mode in nat dr tun; do
	ok=$(metrics_say "$mode")
	lab_check "$mode: $leader's /metrics has each real server's connections and weight ($ok)" test "$ok" = yes
done
lab_check "$leader's /metrics: it holds the DR VIP, and leads" test \
	"$(metric raftlvs_vip_held "interface=\"eth0\",vip=\"$RL_DR_VIP\"")/$(metric raftlvs_raft_leader)" = "1/1"
grep -c '^raftlvs_' "$metrics" | xargs printf '   %s raftlvs series in the scrape\n'

echo "---- raftlvs status"
rl_cli status
echo "---- ipvsadm -Ln --stats ($leader)"
lab_exec "$leader" ipvsadm -Ln --stats
lab_done
