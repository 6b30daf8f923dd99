# cluster.sh — raftlvs helpers for kernel-lab scenarios. Runs INSIDE the guest, sourced
# after lib.sh (`. /lab/lib.sh; . /lab/cluster.sh`). It knows the standard raftlvs
# topology, starts directors and agents from /bin/raftlvs, and compares IPVS tables.
#
# The standard topology: one L2 segment (br0), two IPv4 subnets on it.
#
#   br0  10.100.0.0/24 (front)                    10.100.2.0/24 (NAT side, same wire)
#     client  .10
#     d1 .2  d2 .3  d3 .4   directors; the Raft leader holds the VIPs on eth0
#     rs1 .21 rs2 .22 rs3 .23   real servers, DR/TUN    rs1 .21 rs2 .22 rs3 .23 (NAT)
#     VIPs  .100 NAT   .101 DR   .102 TUN
#
# Why NAT works across failovers: NAT replies must go back through the director that
# holds the VIP, whichever it is now. raftlvs moves only the service VIPs, so the real
# servers use the NAT VIP itself as their gateway: their NAT address (10.100.2.x) has a
# policy route "from 10.100.2.0/24 → default via 10.100.0.100 onlink". They sit on the
# same segment as the directors, so the new leader's gratuitous ARP for the VIP re-points
# their gateway at the same moment as it re-points the client. DR and TUN replies leave
# from the VIP (main table, straight to the client) and never see that rule. Directors
# reach 10.100.2.0/24 on-link and do not send ICMP redirects (the reply enters and leaves
# eth0, and a redirect would send the real server straight to the client — the classic
# "one-network LVS-NAT" rule).

RL_BIN=${RL_BIN:-/bin/raftlvs}
# One P per Go process: under TCG an idle director with GOMAXPROCS=2 burns ~30% of a vCPU in
# scheduler spinning and timers (7% with 1), and three of them starve each other into
# missed Raft heartbeats and needless elections. It changes nothing raftlvs does.
export GOMAXPROCS=${RL_GOMAXPROCS:-1}
RL_DIRECTORS="d1 d2 d3"
RL_RS="rs1 rs2 rs3"
RL_NAT_VIP=10.100.0.100
RL_DR_VIP=10.100.0.101
RL_TUN_VIP=10.100.0.102
RL_BOUND=${RL_BOUND:-60} # seconds: generous, TCG on a busy 2-core host is slow
# Raft timings. The defaults (heartbeat = election = 500 ms, lease 250 ms) assume a real
# machine; under emulation on a shared 2-core host the whole guest stalls for hundreds of
# milliseconds whenever the host deschedules qemu, and a 250 ms lease then makes leaders
# step down over and over (measured: ~40 elections in 4 minutes of an idle cluster). The
# lab doubles them by default; RL_RAFT_FLAGS="" runs the raftlvs defaults.
RL_RAFT_FLAGS=${RL_RAFT_FLAGS---heartbeat 1s --election 1s --leader-lease 500ms}

declare -A RL_IP=([client]=10.100.0.10 [d1]=10.100.0.2 [d2]=10.100.0.3 [d3]=10.100.0.4
	[rs1]=10.100.0.21 [rs2]=10.100.0.22 [rs3]=10.100.0.23)
declare -A RL_NAT_IP=([rs1]=10.100.2.21 [rs2]=10.100.2.22 [rs3]=10.100.2.23)

# A fresh gossip key per run, as an operator would make one.
RL_GOSSIP_KEY=${RL_GOSSIP_KEY:-$(head -c 32 /dev/urandom | $LAB_BB base64)}
export RAFTLVS_API="${RL_IP[d1]}:7080,${RL_IP[d2]}:7080,${RL_IP[d3]}:7080"
# TLS is on, as by default: d1's bootstrap makes the cluster CA and leaves an admin
# certificate in its data dir, which the operator's CLI (in the client namespace) uses.
RL_TLS=/var/lib/raftlvs-d1/tls
export RAFTLVS_CERT=$RL_TLS/admin.pem RAFTLVS_KEY=$RL_TLS/admin-key.pem RAFTLVS_CA=$RL_TLS/ca.pem

# ---- topology -------------------------------------------------------------------------

# rl_topology: client, three directors, three real servers (HTTP on :80 answering their
# name, a line echo on :7 that first says its name). No raftlvs yet.
rl_topology() {
	local d rs
	lab_switch br0
	lab_host client "${RL_IP[client]}/24" ""
	for d in $RL_DIRECTORS; do
		lab_host "$d" "${RL_IP[$d]}/24" ""
		ip -n "$d" route add 10.100.2.0/24 dev eth0
		lab_sysctl "$d" net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 \
			net.ipv4.conf.eth0.send_redirects=0 net.ipv4.conf.default.send_redirects=0
	done
	for rs in $RL_RS; do
		lab_host "$rs" "${RL_IP[$rs]}/24" ""
		ip -n "$rs" -b - <<-EOF
			addr add ${RL_NAT_IP[$rs]}/24 dev eth0
			route add default via $RL_NAT_VIP dev eth0 onlink table 100
			rule add from 10.100.2.0/24 table 100 priority 100
		EOF
		lab_http "$rs" 80
		rl_echo_server "$rs"
	done
}

# rl_rs_dr_tun RS...: configure real servers by hand for the DR and TUN VIPs (what the
# agent would do; scenarios without agents need it).
rl_rs_dr_tun() {
	local rs
	for rs in "$@"; do
		lab_dr_realserver "$rs" "$RL_DR_VIP"
		lab_tun_realserver "$rs" "$RL_TUN_VIP"
	done
}

# rl_echo_server RS [PORT]: a persistent line-echo server that greets with RS's name,
# so a long-lived connection shows which real server it reached.
rl_echo_server() {
	local rs=$1 port=${2:-7}
	mkdir -p "$LAB_SRV"
	printf '#!/bin/busybox sh\necho %s\nexec cat\n' "$rs" >"$LAB_SRV/echo-$rs.sh"
	chmod +x "$LAB_SRV/echo-$rs.sh"
	lab_bg "$rs" "echo-$rs" $LAB_BB nc -ll -p "$port" -e "$LAB_SRV/echo-$rs.sh"
}

# ---- directors ------------------------------------------------------------------------

# rl_token ROLE [FLAG...]: a fresh token from the cluster (raftlvs token create).
rl_token() {
	local role=$1
	shift
	rl_cli token create --role "$role" --ttl 1h "$@"
}

# rl_director NAME [EXTRA_FLAG...]: start (or restart: same data dir) director NAME in its
# namespace. d1 carries --bootstrap (ignored once it has state), the others join through
# every director's API, with a director token the first time (a restart has its
# certificate). RL_DIRECTOR_FLAGS adds flags to every director. Output appends to
# $LAB_RUN/NAME.log.
rl_director() {
	local name=$1 ip=${RL_IP[$1]} role token
	shift
	if [ "$name" = d1 ]; then
		role=--bootstrap
	else
		role="--join=$RAFTLVS_API"
		if [ ! -e "/var/lib/raftlvs-$name/tls/node.pem" ]; then
			token=${RL_JOIN_TOKEN:-$(rl_token director)} || lab_die "no director token for $name"
			role="$role --token=$token"
		fi
	fi
	mkdir -p -m 700 "/var/lib/raftlvs-$name"
	# ip netns exec execs raftlvs: $! is raftlvs itself (a shell function here would put a
	# subshell in between, and a kill -9 would miss raftlvs).
	$LAB_IP netns exec "$name" "$RL_BIN" director --id "$name" $role \
		--data-dir "/var/lib/raftlvs-$name" --raft-addr "$ip:7000" --api-addr "$ip:7080" \
		--gossip-addr "$ip:7946" --gossip-key "$RL_GOSSIP_KEY" \
		--vip-interface eth0 --sync-interface eth0 --sync-id 1 $RL_RAFT_FLAGS ${RL_DIRECTOR_FLAGS:-} "$@" \
		>>"$LAB_RUN/$name.log" 2>&1 &
	echo $! >"$LAB_RUN/$name.pid"
}

# rl_kill NAME [SIGNAL]: signal director/agent NAME (default KILL) and reap it.
rl_kill() {
	lab_stop "$1" "${2:-KILL}"
}

# rl_cli [--api ADDR] ARGS...: the operator CLI, run from the client's namespace (the
# operator's host on the front segment) against every director in turn.
rl_cli() {
	lab_exec client "$RL_BIN" --timeout 20s "$@"
}

# rl_json DIR JQ: a director's own status (GET /v1/status, what `raftlvs status -o json`
# prints), asked of that director only, through jq. curl rather than the CLI: the waits
# poll it, and a Go process start costs a few tenths of a second under emulation. The
# director's certificate names its address, so curl verifies it as any client would.
rl_json() {
	lab_exec client curl -sf --max-time 10 --cacert "$RAFTLVS_CA" --cert "$RAFTLVS_CERT" --key "$RAFTLVS_KEY" \
		"https://${RL_IP[$1]}:7080/v1/status" 2>/dev/null | jq -r "$2"
}

# rl_leader [DIR]: the leader's id as DIR (default: any director) sees it; empty if none.
rl_leader() {
	local d
	for d in ${1:-$RL_DIRECTORS}; do
		rl_json "$d" '.node.leader_id // empty' && return 0
	done
	return 1
}

# rl_all_agree_leader DIR...: every DIR names the same, non-empty leader, which is one of
# them. Prints it.
rl_all_agree_leader() {
	local d l first=
	for d in "$@"; do
		l=$(rl_json "$d" '.node.leader_id // empty') || return 1
		[ -n "$l" ] || return 1
		[ -z "$first" ] || [ "$l" = "$first" ] || return 1
		first=$l
	done
	case " $* " in *" $first "*) ;; *) return 1 ;; esac
	echo "$first"
}

# rl_cluster: start d1 (bootstrap) and d2, d3 (join: they retry until d1 leads) at once;
# wait until all three see three voters and agree on the leader.
rl_cluster() {
	local t0
	t0=$(lab_now_ms)
	rl_director d1
	# The joiners' tokens come from the cluster: d1 must lead first.
	lab_wait_for 'test "$(rl_json d1 .node.leader_id)" = d1' "$RL_BOUND" 0.5 ||
		lab_die "d1 did not bootstrap"
	rl_director d2
	rl_director d3
	lab_wait_for 'rl_converged_voters 3' "$RL_BOUND" 0.5 ||
		lab_die "the three directors did not form one cluster"
	lab_log "cluster of 3 directors formed in $(($(lab_now_ms) - t0)) ms"
}

# rl_converged_voters N: every running director reports N voters and one common leader.
rl_converged_voters() {
	local d
	for d in $RL_DIRECTORS; do
		test "$(rl_json "$d" '.node.voters | length')" = "$1" || return 1
	done
	rl_all_agree_leader $RL_DIRECTORS >/dev/null
}

# rl_vip_holder VIP: the director namespaces that hold VIP (normally exactly one).
rl_vip_holder() {
	local d out=
	for d in $RL_DIRECTORS; do
		ip -n "$d" -o addr show dev eth0 2>/dev/null | grep -q " $1/" && out="$out $d"
	done
	echo "${out# }"
}

# rl_mac NAME [IF]: the MAC address of NAME's interface (default eth0).
rl_mac() {
	ip -n "$1" -o link show dev "${2:-eth0}" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'
}

# rl_neigh NAME ADDR: NAME's neighbour entry for ADDR ("MAC STATE"), empty if none.
rl_neigh() {
	ip -n "$1" neigh show "$2" dev eth0 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i+1), $NF }'
}

# ---- IPVS tables ----------------------------------------------------------------------

# rl_ipvs NAME: NAME's IPVS rules (ipvsadm -Sn), sorted: the comparable form.
rl_ipvs() {
	lab_exec "$1" ipvsadm -Sn | sort
}

# rl_ipvs_equal WANT_FILE DIR...: each DIR's sorted ipvsadm -Sn equals WANT_FILE (sorted).
rl_ipvs_equal() {
	local want=$1 d
	shift
	for d in "$@"; do
		rl_ipvs "$d" | cmp -s - "$want" || return 1
	done
}

# rl_check_ipvs WANT_FILE DESC DIR...: PASS/FAIL per director, with the diff on failure.
rl_check_ipvs() {
	local want=$1 desc=$2 d
	shift 2
	for d in "$@"; do
		if rl_ipvs "$d" | cmp -s - "$want"; then
			lab_pass "$d: ipvsadm -Sn equals $desc"
		else
			lab_fail "$d: ipvsadm -Sn differs from $desc"
			rl_ipvs "$d" | diff "$want" - | sed 's/^/    /'
		fi
	done
}

# ---- agents ---------------------------------------------------------------------------

# rl_agent RS SERVICE_SPEC... : start an agent on real server RS (address: its front
# address unless RL_AGENT_ADDR is set), joining every director's gossip port.
rl_agent() {
	local rs=$1 spec args=()
	shift
	for spec in "$@"; do args+=(--service "$spec"); done
	if [ ! -e "/var/lib/agent-$rs/agent/tls/node.pem" ]; then
		# The lab's real servers reach the directors from their front address while
		# they may serve from their NAT one: the token allows the lab's networks.
		args+=(--token "$(rl_token agent --network 10.100.0.0/16)")
	fi
	mkdir -p -m 700 "/var/lib/agent-$rs"
	$LAB_IP netns exec "$rs" "$RL_BIN" agent --id "$rs" --addr "${RL_AGENT_ADDR:-${RL_IP[$rs]}}" \
		--join "${RL_IP[d1]}:7946,${RL_IP[d2]}:7946,${RL_IP[d3]}:7946" \
		--gossip-key "$RL_GOSSIP_KEY" --state-file "/var/lib/agent-$rs/agent.json" --poll 1s \
		"${args[@]}" >>"$LAB_RUN/agent-$rs.log" 2>&1 &
	echo $! >"$LAB_RUN/agent-$rs.pid"
}

# ---- client traffic -------------------------------------------------------------------

# rl_probe_start URL: from the client, start a GET of URL every 100 ms, each on a new
# connection and without waiting for the previous one (a request lost to a dead director
# must not delay the next). Each answer is logged as "START_S END_S BODY" (uptime, 10 ms
# resolution) in $LAB_RUN/probe.out.
rl_probe_start() {
	rm -f "$LAB_RUN/probe.stop"
	: >"$LAB_RUN/probe.out"
	lab_exec client $LAB_BB sh -c '
		while [ ! -e "$2.stop" ]; do
			read s _ </proc/uptime
			( b=$(wget -q -O - "$1" 2>/dev/null) && read e _ </proc/uptime && echo "$s $e $b" >>"$2.out" ) &
			sleep 0.1
		done
		wait' rl_probe "$1" "$LAB_RUN/probe" >/dev/null 2>&1 &
	echo $! >"$LAB_RUN/probe.pid"
}

# rl_probe_stop: stop sending; requests still hanging get a few seconds, then are killed.
rl_probe_stop() {
	local pid p
	touch "$LAB_RUN/probe.stop"
	pid=$(cat "$LAB_RUN/probe.pid")
	if ! lab_wait_for "! kill -0 $pid" 10 0.2; then
		# Requests sent to a dead director may still be retrying their SYN: end them.
		for p in $(ip netns pids client); do
			[ "$(cat "/proc/$p/comm" 2>/dev/null)" = wget ] && kill "$p" 2>/dev/null
		done
		lab_wait_for "! kill -0 $pid" 5 0.2
	fi
	wait "$pid" 2>/dev/null || true
}

# rl_outage_ms KILL_UPTIME: the gap the client saw: from the last answer received before
# the kill to the first answer to a request sent after it, in ms. (A request sent before
# the kill may still complete just after it without any failover having happened.)
# Fails if either is missing.
rl_outage_ms() {
	awk -v k="$1" '
		$2 <= k && (last == "" || $2 > last) { last = $2 }
		$1 > k && (first == "" || $2 < first) { first = $2 }
		END { if (last == "" || first == "") exit 1; printf "%d\n", (first - last) * 1000 + 0.5 }' \
		"$LAB_RUN/probe.out"
}

# ---- rules and failures ---------------------------------------------------------------

# rl_restore FILE: `raftlvs restore` of an ipvsadm -Sn style rule file (one atomic batch).
rl_restore() {
	lab_exec client "$RL_BIN" --timeout 120s restore - <"$1"
}

# rl_dr_rules PORT... : ipvsadm -Sn lines of the DR VIP on each PORT, rr over rs1-rs3.
rl_dr_rules() {
	local port rs
	for port in "$@"; do
		echo "-A -t $RL_DR_VIP:$port -s rr"
		for rs in $RL_RS; do echo "-a -t $RL_DR_VIP:$port -r ${RL_IP[$rs]}:$port -g -w 1"; done
	done
}

# rl_crash NAME: the director machine dies: its raftlvs is killed (-9) and its cable is
# pulled (the bridge port goes down) at once. A kill -9 alone would leave its kernel
# forwarding through IPVS and answering ARP for the VIPs, which no crashed machine does.
# The guest uptime of the moment the cable was pulled goes to $LAB_RUN/crash.up.
rl_crash() {
	ip link set "$1-eth0" down
	cut -d' ' -f1 /proc/uptime >"$LAB_RUN/crash.up"
	rl_kill "$1" KILL 2>/dev/null
}

# rl_revive NAME: the cable back in, raftlvs started again on the same data dir.
rl_revive() {
	ip link set "$1-eth0" up
	rl_director "$1"
}

# rl_new_leader OLD: wait until the directors other than OLD agree on a leader other than
# OLD; prints it. Returns 1 on timeout.
rl_new_leader() {
	# shellcheck disable=SC2034 # others and l are used by the eval'd command
	local others=${RL_DIRECTORS/$1/} l=
	lab_wait_for 'l=$(rl_all_agree_leader $others)' "$RL_BOUND" 0.2 || return 1
	echo "$l"
}

# rl_done: lab_done (which shows every director's and agent's log if anything failed).
rl_done() { lab_done; }
