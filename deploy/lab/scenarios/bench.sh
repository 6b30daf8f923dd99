#!/bin/bash
# bench — the lab's figures (run it with `lab.sh bench`):
#  1. crash-failover time as the client sees it, over BENCH_TRIALS crashes of the leader
#     (kill -9 + cable pulled; the client GETs the DR VIP every 100 ms; outage = last answer
#     before the crash → first answer to a request sent after it): min / median / p99 / max.
#  2. programming BENCH_SERVICES services x BENCH_SERVERS real servers: `raftlvs restore`
#     of a generated rule file into the cluster, timed until every director has programmed
#     all of it (then checked with `ipvsadm -Sn`), against `ipvsadm -R` of the same file in
#     a namespace of its own; at 10,000 x 10 also one director's writes alone.
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh
BENCH_TRIALS=10 BENCH_SERVICES=10000 BENCH_SERVERS=10
[ -f /lab/bench.conf ] && . /lab/bench.conf

rl_topology
rl_rs_dr_tun $RL_RS
rl_cluster
rl_dr_rules 80 | sort >"$LAB_RUN/dr.rules"
rl_restore "$LAB_RUN/dr.rules" >/dev/null || lab_die "restore of the DR service failed"
lab_wait_for "rl_ipvs_equal $LAB_RUN/dr.rules $RL_DIRECTORS" "$RL_BOUND" 0.5 || lab_die "DR service not programmed"

# stats FILE: "min median p99 max" of one number a line (nearest-rank percentiles).
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		p = int(NR * 0.99); if (p < NR * 0.99) p++; m = int((NR + 1) / 2)
		printf "%d %d %d %d\n", v[1], v[m], v[p], v[NR] }'
}

# quiet: wait (at most 60 s) until the VM's CPUs are at least 80% idle over a second. A
# namespace deleted just before (ipvsadm -R's, the lone director's) is torn down by the
# kernel in the background, 110,000 rules of it, and would be counted against what is
# measured next.
quiet() {
	local t0 a b idle=0
	t0=$(lab_now_ms)
	while [ $(($(lab_now_ms) - t0)) -lt 60000 ]; do
		a=$(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8, $5 + $6 }' /proc/stat)
		sleep 1
		b=$(awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8, $5 + $6 }' /proc/stat)
		idle=$(echo "$a $b" | awk '{ t = $3 - $1; print (t > 0 ? int(100 * ($4 - $2) / t) : 100) }')
		if [ "$idle" -ge 80 ]; then
			lab_log "quiet after $(($(lab_now_ms) - t0)) ms ($idle% idle)"
			return 0
		fi
	done
	lab_log "the VM did not quiet down in 60 s ($idle% idle): the next figure is pessimistic"
}

# ---- 1. failover ----
lab_log "failover: $BENCH_TRIALS crashes of the leader"
: >"$LAB_RUN/outages"
: >"$LAB_RUN/elections"
for trial in $(seq "$BENCH_TRIALS"); do
	old=$(rl_leader)
	lab_wait_for "test \"\$(rl_vip_holder $RL_DR_VIP)\" = $old" "$RL_BOUND" 0.2 || { lab_fail "trial $trial: $old does not hold the VIP"; continue; }
	rl_probe_start "http://$RL_DR_VIP/"
	lab_wait_for "[ \$(wc -l <$LAB_RUN/probe.out) -ge 5 ]" "$RL_BOUND" 0.2
	rl_crash "$old"
	kill_up=$(cat "$LAB_RUN/crash.up")
	new=$(rl_new_leader "$old") || { rl_probe_stop; lab_die "trial $trial: no new leader"; }
	lab_wait_for "awk -v k=$kill_up '\$1 > k' $LAB_RUN/probe.out | grep -q ." "$RL_BOUND" 0.2
	rl_probe_stop
	if ms=$(rl_outage_ms "$kill_up"); then
		echo "$ms" >>"$LAB_RUN/outages"
		lab_log "trial $trial: $old crashed, $new leads, client outage $ms ms"
	else
		lab_fail "trial $trial: no answer after the crash of $old"
	fi
	# Back to three directors before the next trial (not timed).
	rl_revive "$old"
	lab_wait_for "rl_converged_voters 3 && rl_ipvs_equal $LAB_RUN/dr.rules $RL_DIRECTORS" "$RL_BOUND" 0.5 ||
		lab_die "trial $trial: $old did not rejoin"
	lab_wait_for "test \"\$(rl_vip_holder $RL_DR_VIP)\" = $new" "$RL_BOUND" 0.5 ||
		lab_fail "trial $trial: the VIP is held by [$(rl_vip_holder $RL_DR_VIP)], want $new alone"
done
n=$(wc -l <"$LAB_RUN/outages")
if [ "$n" -gt 0 ]; then
	# (no < <(...): the guest has no /dev/fd for process substitution)
	read -r mn med p99 mx <<<"$(stats "$LAB_RUN/outages")"
	lab_pass "failover over $n trials: min $mn ms, median $med ms, p99 $p99 ms, max $mx ms [$(tr '\n' ' ' <"$LAB_RUN/outages")]"
	lab_figure failover_trials "$n"
	lab_figure failover_min_ms "$mn" ms
	lab_figure failover_median_ms "$med" ms
	lab_figure failover_p99_ms "$p99" ms
fi

# ---- 2. programming ----
S=$BENCH_SERVICES R=$BENCH_SERVERS
lab_log "programming: $S services x $R real servers"
# 100 VIPs x S/100 ports (an operator's 10,000 services share addresses; 10,000 VIPs would
# make this a benchmark of address claiming). NAT real servers on the on-link 10.100.2/24.
awk -v S="$S" -v R="$R" 'BEGIN {
	for (i = 0; i < S; i++) {
		vip = sprintf("10.100.3.%d:%d", i % 100 + 1, int(i / 100) + 1000)
		printf "-A -t %s -s wrr\n", vip
		for (j = 1; j <= R; j++) printf "-a -t %s -r 10.100.2.%d:%d -m -w 1\n", vip, j + 100, int(i / 100) + 1000
	}
}' >"$LAB_RUN/big.rules"
rules=$(wc -l <"$LAB_RUN/big.rules")
sort "$LAB_RUN/big.rules" "$LAB_RUN/dr.rules" >"$LAB_RUN/big.want"

# Plain ipvsadm -R in a namespace of its own, the baseline.
ip netns add plain
ip -n plain link set lo up
quiet
t0=$(lab_now_ms)
lab_exec plain ipvsadm -R <"$LAB_RUN/big.rules" || lab_fail "ipvsadm -R failed"
plain_ms=$(($(lab_now_ms) - t0))
got=$(lab_exec plain ipvsadm -Sn | wc -l)
lab_check "ipvsadm -R: $got rules in $plain_ms ms" test "$got" = "$rules"
lab_exec plain ipvsadm -C
ip netns del plain

# One director's share of the work, alone: the reconciler writing 10,000 × 10 into a
# namespace of its own (director/ipvs BenchmarkLabProgram10k: batched netlink writes).
if [ -x /lab/gotests/director-ipvs.test ] && [ "$S" = 10000 ] && [ "$R" = 10 ]; then
	quiet
	out=$(cd /tmp && /lab/gotests/director-ipvs.test -test.run '^$' -test.bench '^BenchmarkLabProgram10k$' -test.benchtime 1x 2>&1)
	one_ms=$(echo "$out" | awk '$1 ~ /^BenchmarkLabProgram10k/ { printf "%d", $3 / 1000000 }')
	if [ -n "$one_ms" ]; then
		lab_pass "one director alone (reconciler, batched netlink): $rules rules in $one_ms ms (ipvsadm -R: $plain_ms ms)"
		lab_figure program_one_director_ms "$one_ms" ms
		lab_figure program_ratio_one_director_over_ipvsadm "$(awk -v a="$one_ms" -v b="$plain_ms" 'BEGIN { printf "%.3f", a / b }')" x
	else
		lab_fail "BenchmarkLabProgram10k did not run: $out"
	fi
fi

# count_ok DIR: DIR's last pass that wrote to its kernel left every rule programmed (the
# director logs each such pass with the size of its table; a grep of that log costs the
# directors nothing, where `ipvsadm -Sn` of 110,000 rules in three namespaces every few
# seconds would slow down what it measures). ipvsadm checks the result once, at the end.
# (Not /proc/net/ip_vs: with services in several namespaces, kernel 6.1 lists only some.)
count_ok() {
	grep 'msg="IPVS pass done"' "$LAB_RUN/$1.log" | tail -1 |
		grep -q "table_services=$((S + 1)) table_real_servers=$((S * R + 3))" # + the DR service
}
# One restore of the whole file: the CLI stages it in chunks, four in flight, and commits
# them at once, all or nothing.
quiet
t0=$(lab_now_ms)
if ! lab_exec client "$RL_BIN" --timeout 1200s restore - <"$LAB_RUN/big.rules" >/dev/null 2>"$LAB_RUN/restore.err"; then
	cat "$LAB_RUN/restore.err" >&2
	lab_fail "raftlvs restore of the $rules rules failed"
fi
commit_ms=$(($(lab_now_ms) - t0))
lab_log "raftlvs restore of $rules rules (one command, staged) committed in $commit_ms ms"
# Each director's time to hold every rule (the first one done is usually the leader).
pending=$RL_DIRECTORS first_ms= all_ms= polls=0
while [ -n "$pending" ] && [ $(($(lab_now_ms) - t0)) -lt 1500000 ]; do
	still=
	polls=$((polls + 1))
	if [ $((polls % 30)) = 0 ]; then # progress, and who uses the CPU
		for d in $pending; do
			grep -E 'IPVS pass done|level=(WARN|ERROR).*component=(ipvs|director)' "$LAB_RUN/$d.log" | tail -1 | cut -c1-400 | sed "s/^/  $d: /"
		done
		top -b -n 1 | head -9 | cut -c1-100 | sed 's/^/  top: /'
	fi
	for d in $pending; do
		if count_ok "$d"; then
			ms=$(($(lab_now_ms) - t0))
			lab_log "$d holds all $rules rules after $ms ms"
			first_ms=${first_ms:-$ms} all_ms=$ms
		else
			still="$still $d"
		fi
	done
	pending=${still# }
	[ -z "$pending" ] || sleep 1
done
if [ -z "$pending" ]; then
	rl_check_ipvs "$LAB_RUN/big.want" "the $rules generated rules (+ the DR service)" $RL_DIRECTORS
	lab_pass "raftlvs: $rules rules on every director in $all_ms ms (ipvsadm -R: $plain_ms ms)"
	lab_figure program_rules "$rules"
	lab_figure program_ipvsadm_R_ms "$plain_ms" ms
	lab_figure program_raftlvs_commit_ms "$commit_ms" ms
	lab_figure program_raftlvs_first_director_ms "$first_ms" ms
	lab_figure program_raftlvs_all_ms "$all_ms" ms
	lab_figure program_ratio_raftlvs_over_ipvsadm "$(awk -v a="$all_ms" -v b="$plain_ms" 'BEGIN { printf "%.2f", a / b }')" x
else
	lab_fail "raftlvs: after 1500 s, $pending still lack some of the $rules rules"
fi
for d in $RL_DIRECTORS; do # the last IPVS pass, and any trouble the data plane reported
	grep -E 'IPVS pass done|level=(WARN|ERROR).*component=(ipvs|director)' "$LAB_RUN/$d.log" | tail -2 | cut -c1-400 | sed "s/^/  $d: /"
done
free -m | sed 's/^/  mem: /'
ps -o pid,rss,args | grep '[d]irector' | cut -c1-60 | sed 's/^/  rss: /'
rl_done
