#!/bin/bash
# drift — someone changes a director's IPVS table behind raftlvs's back (ipvsadm -D of a
# service, -e of a weight, -d / -a of a real server), on the leader and on a follower:
# the reconciler puts the table back within seconds. A foreign service added by hand with
# ipvsadm stays exactly as it was. Figure: how long the repair of an `ipvsadm -D` took.
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh

rl_topology
rl_rs_dr_tun $RL_RS
rl_cluster
{
	rl_dr_rules 80
	echo "-A -t $RL_NAT_VIP:80 -s wrr"
	for rs in $RL_RS; do echo "-a -t $RL_NAT_VIP:80 -r ${RL_NAT_IP[$rs]}:80 -m -w 1"; done
} | sort >"$LAB_RUN/ours.rules"
lab_step "raftlvs restore of a DR and a NAT service" rl_restore "$LAB_RUN/ours.rules"

# A foreign service, added by hand on every director (raftlvs must leave it alone).
cat >"$LAB_RUN/foreign.rules" <<EOR
-A -t 10.100.0.200:8080 -s sh
-a -t 10.100.0.200:8080 -r 10.100.0.21:8080 -g -w 5
EOR
for d in $RL_DIRECTORS; do
	lab_exec "$d" ipvsadm -R <"$LAB_RUN/foreign.rules" || lab_fail "ipvsadm -R of the foreign service on $d"
done
sort "$LAB_RUN/ours.rules" "$LAB_RUN/foreign.rules" >"$LAB_RUN/want.rules"
lab_check "every director: raftlvs's rules plus the foreign service" \
	lab_wait_for "rl_ipvs_equal $LAB_RUN/want.rules $RL_DIRECTORS" "$RL_BOUND" 0.5
leader=$(rl_leader)
follower=${RL_DIRECTORS/$leader/}
follower=$(echo $follower | cut -d' ' -f1)
lab_log "leader $leader, follower $follower"

# drift KIND DIR IPVSADM_ARGS...: break DIR's table, time the repair.
drift() {
	local what=$1 d=$2 t0 ms
	shift 2
	lab_exec "$d" ipvsadm "$@" || { lab_fail "$d: ipvsadm $* failed"; return; }
	t0=$(lab_now_ms)
	if lab_wait_for "rl_ipvs_equal $LAB_RUN/want.rules $d" "$RL_BOUND" 0.2; then
		ms=$(($(lab_now_ms) - t0))
		lab_pass "$d ($what): 'ipvsadm $*' repaired in $ms ms"
		lab_figure "drift_repair_${what}_${1#-}_ms" "$ms" ms
	else
		lab_fail "$d ($what): 'ipvsadm $*' not repaired"
		rl_ipvs "$d" | diff "$LAB_RUN/want.rules" - | sed 's/^/    /'
	fi
}
drift leader "$leader" -D -t "$RL_DR_VIP:80"
drift follower "$follower" -D -t "$RL_DR_VIP:80"
drift follower "$follower" -e -t "$RL_NAT_VIP:80" -r "${RL_NAT_IP[rs1]}:80" -m -w 9
drift follower "$follower" -d -t "$RL_NAT_VIP:80" -r "${RL_NAT_IP[rs2]}:80"
drift follower "$follower" -a -t "$RL_DR_VIP:80" -r 10.100.0.99:80 -g -w 1
drift leader "$leader" -E -t "$RL_NAT_VIP:80" -s rr

rl_check_ipvs "$LAB_RUN/want.rules" "raftlvs's rules plus the untouched foreign service" $RL_DIRECTORS
lab_expect_spread client "http://$RL_DR_VIP/" 6 rs1 rs2 rs3
lab_expect_spread client "http://$RL_NAT_VIP/" 6 rs1 rs2 rs3
rl_done
