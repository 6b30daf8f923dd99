#!/bin/bash
# agents — real servers that register themselves. Agents on rs1-rs3 join the directors'
# gossip pool; each becomes a real server on every director (status and ipvsadm -Sn), and
# configures its own host: DR → the VIP on lo after arp_ignore=1/arp_announce=2; TUN →
# tunl0 up with the VIP, rp_filter off. A SIGTERM drains (weight 0), removes the real
# server and leaves the host exactly as it was; a kill -9 takes it out of rotation.
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh

# A leaving agent's real server is removed once IPVS counts no connection to it, active or
# inactive, or after --drain-max. DR connections linger 2 minutes as inactive (FIN_WAIT)
# entries, so after any traffic a drain lasts --drain-max: 10 s here instead of 1 minute.
DRAIN_MAX=10
RL_DIRECTOR_FLAGS="--drain-max ${DRAIN_MAX}s"
rl_topology
rl_cluster
lab_step "service add web (DR, $RL_DR_VIP:80)" rl_cli service add -t "$RL_DR_VIP:80" -s wrr --forward dr --name web
lab_step "service add tunweb (TUN, $RL_TUN_VIP:80)" rl_cli service add -t "$RL_TUN_VIP:80" -s wrr --forward tun --name tunweb

# host_state RS: what an agent may change on its host, in one comparable text.
host_state() {
	ip -n "$1" -o addr show dev lo | awk '{ print "lo", $4 }'
	ip -n "$1" -o addr show dev tunl0 | awk '{ print "tunl0", $4 }'
	ip -n "$1" -o link show dev tunl0 | grep -o 'state [A-Z]*' | sed 's/^/tunl0 /'
	lab_exec "$1" $LAB_BB sysctl net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce \
		net.ipv4.conf.eth0.arp_ignore net.ipv4.conf.eth0.arp_announce net.ipv4.conf.all.rp_filter \
		net.ipv4.conf.eth0.rp_filter net.ipv4.conf.tunl0.rp_filter
}
for rs in $RL_RS; do host_state "$rs" >"$LAB_RUN/$rs.before"; done

rl_agent rs1 web
RL_AGENT_FLAGS="--metrics-addr ${RL_IP[rs2]}:9846" rl_agent rs2 web@2 tunweb
rl_agent rs3 tunweb@3
cat >"$LAB_RUN/want.rules" <<EOR
-A -t $RL_DR_VIP:80 -s wrr
-a -t $RL_DR_VIP:80 -r ${RL_IP[rs1]}:80 -g -w 1
-a -t $RL_DR_VIP:80 -r ${RL_IP[rs2]}:80 -g -w 2
-A -t $RL_TUN_VIP:80 -s wrr
-a -t $RL_TUN_VIP:80 -r ${RL_IP[rs2]}:80 -i -w 1 --tun-type ipip
-a -t $RL_TUN_VIP:80 -r ${RL_IP[rs3]}:80 -i -w 3 --tun-type ipip
EOR
sort -o "$LAB_RUN/want.rules" "$LAB_RUN/want.rules"
t0=$(lab_now_ms)
if lab_wait_for "rl_ipvs_equal $LAB_RUN/want.rules $RL_DIRECTORS" "$RL_BOUND" 0.5; then
	lab_pass "three agents registered: every director programmed them in $(($(lab_now_ms) - t0)) ms"
	lab_figure agents_registered_ms $(($(lab_now_ms) - t0)) ms
else
	rl_check_ipvs "$LAB_RUN/want.rules" "the agents' real servers" $RL_DIRECTORS
	rl_cli status
	lab_die "the agents' real servers never reached every director's IPVS"
fi
for d in $RL_DIRECTORS; do
	got=$(lab_exec client "$RL_BIN" --api "${RL_IP[$d]}:7080" status -o json |
		jq -r '[.services[] | .real_servers[]? | "\(.addr)"] | sort | join(" ")')
	lab_check "$d: raftlvs status -o json lists the agents' real servers [$got]" \
		test "$got" = "${RL_IP[rs1]} ${RL_IP[rs2]} ${RL_IP[rs2]} ${RL_IP[rs3]}"
done

# What the agents did to their hosts.
lab_check "rs1 (DR): VIP on lo" sh -c "ip -n rs1 -o addr show dev lo | grep -q ' $RL_DR_VIP/32 '"
lab_check "rs1 (DR): arp_ignore=1, arp_announce=2" \
	test "$(lab_exec rs1 $LAB_BB sysctl -n net.ipv4.conf.all.arp_ignore net.ipv4.conf.all.arp_announce | tr '\n' ' ')" = "1 2 "
lab_check "rs3 (TUN): tunl0 up with the VIP" \
	sh -c "ip -n rs3 -o addr show dev tunl0 | grep -q ' $RL_TUN_VIP/32' && ip -n rs3 link show tunl0 | grep -q ',UP'"
lab_check "rs3 (TUN): rp_filter off on tunl0 and all" \
	test "$(lab_exec rs3 $LAB_BB sysctl -n net.ipv4.conf.all.rp_filter net.ipv4.conf.tunl0.rp_filter | tr '\n' ' ')" = "0 0 "
lab_check "rs2 (DR and TUN): VIP on lo and tunl0" \
	sh -c "ip -n rs2 -o addr show dev lo | grep -q ' $RL_DR_VIP/32 ' && ip -n rs2 -o addr show dev tunl0 | grep -q ' $RL_TUN_VIP/32'"
lab_expect_spread client "http://$RL_DR_VIP/" 6 rs1 rs2
lab_expect_spread client "http://$RL_TUN_VIP/" 8 rs2 rs3

# rs2's agent serves its own /metrics (--metrics-addr); the directors count the agents.
scrape() { lab_exec client $LAB_BB timeout 10 $LAB_BB wget -q -O - "$1" 2>/dev/null; }
agent_ready() {
	scrape "http://${RL_IP[rs2]}:9846/metrics" | grep -E '^raftlvs_agent_(ready|services|vips_configured) ' | sort | tr '\n' ' '
}
lab_check "rs2's agent metrics: ready, 2 services, 2 VIPs configured [$(agent_ready)]" \
	test "$(agent_ready)" = "raftlvs_agent_ready 1 raftlvs_agent_services 2 raftlvs_agent_vips_configured 2 "
leader_counts_agents() {
	rl_get "$(rl_leader)" /metrics | grep -qx 'raftlvs_agents{state="alive"} 3'
}
lab_check "the leader's metrics count 3 alive agents" leader_counts_agents

# Graceful stop: drain (weight 0) first, then removal; the host as it was.
seen_drain=$LAB_RUN/rs1.drained
drained() { lab_exec "$1" ipvsadm -Sn | grep -q -- "-r ${RL_IP[rs1]}:80 -g -w 0" && touch "$seen_drain"; }
removed() { ! lab_exec "$1" ipvsadm -Sn | grep -q -- "-r ${RL_IP[rs1]}:80 "; }
kill -TERM "$(cat "$LAB_RUN/agent-rs1.pid")"
leader=$(rl_leader)
lab_wait_for "drained $leader || removed $leader" "$RL_BOUND" 0.1
# Under heavy emulation a poll can miss the (at least 2 s) weight-0 window; the leader's
# registrar logs the drain it committed, which is the same fact seen from the state.
[ -e "$seen_drain" ] || ! grep -q "msg=\"drain agent real server\".* addr=${RL_IP[rs1]} " "$LAB_RUN/$leader.log" ||
	touch "$seen_drain"
lab_check "SIGTERM: rs1 drained (weight 0) before it went" test -e "$seen_drain"
lab_check "SIGTERM: rs1 removed from every director (drain-max ${DRAIN_MAX}s)" \
	lab_wait_for "removed d1 && removed d2 && removed d3" "$((DRAIN_MAX + RL_BOUND))" 0.5
lab_check "SIGTERM: the agent exited" lab_wait_for "! kill -0 $(cat "$LAB_RUN/agent-rs1.pid")" "$RL_BOUND" 0.5
host_state rs1 >"$LAB_RUN/rs1.after"
lab_check "SIGTERM: rs1's lo, tunl0 and sysctls are as before the agent" cmp -s "$LAB_RUN/rs1.before" "$LAB_RUN/rs1.after" ||
	diff "$LAB_RUN/rs1.before" "$LAB_RUN/rs1.after" | sed 's/^/    /'

# Crash: kill -9 leaves the host configured, and the directors stop sending it traffic.
kill -KILL "$(cat "$LAB_RUN/agent-rs3.pid")"
t0=$(lab_now_ms)
out_of_rotation() { lab_exec "$1" ipvsadm -Sn | grep -q -- "-r ${RL_IP[rs3]}:80 -i -w 0" || ! lab_exec "$1" ipvsadm -Sn | grep -q -- "-r ${RL_IP[rs3]}:80 "; }
if lab_wait_for "out_of_rotation d1 && out_of_rotation d2 && out_of_rotation d3" "$RL_BOUND" 0.5; then
	lab_pass "kill -9: rs3 out of rotation on every director after $(($(lab_now_ms) - t0)) ms"
	lab_figure agent_crash_out_of_rotation_ms $(($(lab_now_ms) - t0)) ms
else
	lab_fail "kill -9: rs3 still in rotation"
fi
lab_expect_spread client "http://$RL_TUN_VIP/" 4 rs2
rl_check_ipvs "$(rl_ipvs "$leader" >"$LAB_RUN/leader.rules"; echo "$LAB_RUN/leader.rules")" "the leader's" $RL_DIRECTORS
lab_show_log agent-rs1 | grep -v memberlist | tail -n 25
rl_done
