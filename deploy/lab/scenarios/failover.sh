#!/bin/bash
# failover — the leader director crashes (raftlvs killed -9 and its cable pulled) while the
# client holds a TCP connection through the DR VIP. The survivors elect a new leader, which
# claims the VIP (the client's ARP entry now names its MAC); the open connection carries on
# (the new leader's IPVS has its entry, from the connection-sync daemon) and new
# connections succeed. Figure: the outage the client saw (a GET every 100 ms).
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh

rl_topology
rl_rs_dr_tun $RL_RS
rl_cluster
rl_dr_rules 80 7 | sort >"$LAB_RUN/want.rules"
lab_step "raftlvs restore of a DR service on :80 (HTTP) and :7 (echo)" rl_restore "$LAB_RUN/want.rules"
lab_wait_for "rl_ipvs_equal $LAB_RUN/want.rules $RL_DIRECTORS" "$RL_BOUND" 0.5 ||
	lab_fail "not every director programmed the rules"
old=$(rl_leader)
lab_wait_for "test \"\$(rl_vip_holder $RL_DR_VIP)\" = $old" "$RL_BOUND" 0.5 ||
	lab_die "the leader $old never claimed $RL_DR_VIP"
lab_log "leader: $old, holding $RL_DR_VIP"

# A long-lived connection: a line every 100 ms to the echo service, through the VIP.
lab_bg client conn $LAB_BB sh -c "i=0
	while [ \$i -lt 1200 ] && [ ! -e $LAB_RUN/conn.stop ]; do echo line\$i; i=\$((i + 1)); sleep 0.1; done |
	$LAB_BB nc $RL_DR_VIP 7"
lab_wait_for "[ \$(wc -l <$LAB_RUN/conn.log) -ge 10 ]" "$RL_BOUND" 0.2 ||
	lab_die "the long-lived connection through $RL_DR_VIP:7 never echoed"
conn_rs=$(head -n 1 "$LAB_RUN/conn.log")
lab_pass "long-lived connection open through $RL_DR_VIP:7, served by $conn_rs"
# The master sync daemon batches: wait until the followers hold a copy of the connection.
synced() {
	local d
	for d in ${RL_DIRECTORS/$old/}; do
		lab_exec "$d" ipvsadm -Lnc | grep -q "ESTABLISHED.* $RL_DR_VIP:7 " || return 1
	done
}
lab_check "the followers hold the connection (sync daemon)" lab_wait_for synced "$RL_BOUND" 0.5

rl_probe_start "http://$RL_DR_VIP/"
lab_wait_for "[ \$(wc -l <$LAB_RUN/probe.out) -ge 5 ]" "$RL_BOUND" 0.2 || lab_fail "the probe never got an answer"
lines_at_kill=$(wc -l <"$LAB_RUN/conn.log")
rl_crash "$old"
kill_up=$(cat "$LAB_RUN/crash.up")
lab_log "crashed the leader $old at uptime $kill_up"

if new=$(rl_new_leader "$old"); then
	lab_pass "new leader elected: $new (was $old)"
else
	rl_probe_stop
	lab_die "the survivors elected no new leader"
fi
lab_check "the new leader $new holds $RL_DR_VIP" \
	lab_wait_for "test \"\$(rl_vip_holder $RL_DR_VIP)\" = '$old $new' -o \"\$(rl_vip_holder $RL_DR_VIP)\" = '$new $old' -o \"\$(rl_vip_holder $RL_DR_VIP)\" = $new" "$RL_BOUND" 0.2
new_mac=$(rl_mac "$new")
lab_check "the client's ARP entry for $RL_DR_VIP points at $new ($new_mac)" \
	lab_wait_for "rl_neigh client $RL_DR_VIP | grep -q '^$new_mac '" "$RL_BOUND" 0.2
lab_check "$new's IPVS has the open connection (synced before the crash)" \
	sh -c "ip netns exec $new ipvsadm -Lnc | grep -q 'ESTABLISHED.* $RL_DR_VIP:7 '"
lab_check "the open connection carries on: 20 more lines echoed after the crash" \
	lab_wait_for "[ \$(wc -l <$LAB_RUN/conn.log) -ge $((lines_at_kill + 20)) ]" "$RL_BOUND" 0.2
lab_check "the same connection, still open" kill -0 "$(cat "$LAB_RUN/conn.pid")"
lab_wait_for "awk -v k=$kill_up '\$1 > k' $LAB_RUN/probe.out | grep -q ." "$RL_BOUND" 0.2
rl_probe_stop
echo "---- probe answers around the crash (start, end, body)"
awk -v k="$kill_up" '$2 > k - 1 && $1 < k + 8' "$LAB_RUN/probe.out" | sort -n | head -30
if outage=$(rl_outage_ms "$kill_up"); then
	lab_pass "the client saw an outage of $outage ms"
	lab_figure failover_outage_ms "$outage" ms
else
	lab_fail "no answer before or after the crash"
fi
lab_expect_spread client "http://$RL_DR_VIP/" 9 rs1 rs2 rs3
touch "$LAB_RUN/conn.stop"
lab_stop conn
echo "---- $new: ipvsadm -Lnc"
lab_exec "$new" ipvsadm -Lnc | head -20
rl_done
