#!/bin/bash
# restart — a director's raftlvs is killed (-9) and started again on the same data dir,
# first a follower (the cluster changed meanwhile), then the leader (its VIPs and IPVS
# table stay in its kernel, as after any process crash). Each comes back as a voter,
# catches up, and its `ipvsadm -Sn` equals the others' with no drift; the old leader
# drops the VIPs it left behind, so exactly one director holds them.
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh

rl_topology
rl_rs_dr_tun $RL_RS
rl_cluster
rl_dr_rules 80 | sort >"$LAB_RUN/want.rules"
lab_step "raftlvs restore of a DR service" rl_restore "$LAB_RUN/want.rules"
lab_step "every director programmed it" \
	lab_wait_for "rl_ipvs_equal $LAB_RUN/want.rules $RL_DIRECTORS" "$RL_BOUND" 0.5

# rejoin NAME: restart NAME and wait until it is a voter that agrees on the leader and its
# table equals the expected one.
rejoin() {
	local t0 ms
	t0=$(lab_now_ms)
	rl_director "$1"
	if lab_wait_for "rl_converged_voters 3 && rl_ipvs_equal $LAB_RUN/want.rules $RL_DIRECTORS" "$RL_BOUND" 0.5; then
		ms=$(($(lab_now_ms) - t0))
		lab_pass "$1 restarted, rejoined and converged in $ms ms"
		lab_figure "restart_${2}_converged_ms" "$ms" ms
	else
		lab_fail "$1 did not rejoin and converge"
	fi
	rl_check_ipvs "$LAB_RUN/want.rules" "the expected rules" $RL_DIRECTORS
}

leader=$(rl_leader)
follower=$(echo ${RL_DIRECTORS/$leader/} | cut -d' ' -f1)
lab_log "leader $leader; killing follower $follower"
rl_kill "$follower" KILL 2>/dev/null
# The cluster moves on while the follower is down: a real server less, a weight changed.
lab_check "server rm while $follower is down" \
	rl_cli server rm "tcp-$RL_DR_VIP-80" "${RL_IP[rs3]}:80"
lab_check "server edit while $follower is down" \
	rl_cli server edit "tcp-$RL_DR_VIP-80" "${RL_IP[rs1]}:80" -w 2
sed -i -e "s/-r ${RL_IP[rs1]}:80 -g -w 1/-r ${RL_IP[rs1]}:80 -g -w 2/" -e "/-r ${RL_IP[rs3]}:80 /d" "$LAB_RUN/want.rules"
lab_check "$follower's kernel still has the old table (process dead, kernel alive)" \
	sh -c "ip netns exec $follower ipvsadm -Sn | grep -q ' -r ${RL_IP[rs3]}:80 '"
rejoin "$follower" follower

lab_log "killing the leader $leader (its VIPs stay on its eth0)"
rl_kill "$leader" KILL 2>/dev/null
if new=$(rl_new_leader "$leader"); then
	lab_pass "new leader: $new"
else
	lab_die "no new leader after $leader was killed"
fi
lab_check "$new claimed $RL_DR_VIP" lab_wait_for "rl_vip_holder $RL_DR_VIP | grep -qw $new" "$RL_BOUND" 0.2
lab_log "VIP holders while $leader is down: $(rl_vip_holder $RL_DR_VIP)"
rejoin "$leader" leader
# A starved VM may hold an election meanwhile: what matters is that it follows once the
# cluster has settled, rather than coming back as a second leader of its own.
lab_check "the restarted $leader is a follower" lab_wait_for "test \"\$(rl_json $leader .node.state)\" = Follower" "$RL_BOUND" 0.5
lab_check "$RL_DR_VIP is held by $new alone (the stale copy on $leader was removed)" \
	lab_wait_for "test \"\$(rl_vip_holder $RL_DR_VIP)\" = $new" "$RL_BOUND" 0.5
new_mac=$(rl_mac "$new")
lab_check "the client reaches the service through $new" \
	lab_wait_for "test -n \"\$(lab_fetch client http://$RL_DR_VIP/)\"" "$RL_BOUND" 0.5
lab_expect_spread client "http://$RL_DR_VIP/" 6 rs1 rs2
daemons=$(lab_exec "$leader" ipvsadm -L --daemon)
lab_check "the restarted $leader runs the backup sync daemon only [$(echo $daemons)]" \
	sh -c "echo '$daemons' | grep -q backup && ! echo '$daemons' | grep -q master"
lab_log "client's ARP entry for $RL_DR_VIP: $(rl_neigh client $RL_DR_VIP) ($new is $new_mac)"
rl_done
