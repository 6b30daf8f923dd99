# lib.sh — helpers for kernel-lab scenarios. Runs INSIDE the guest, sourced by the
# scenario as `. /lab/lib.sh`; the scenario runs under bash (/bin/sh is bash in the guest),
# with busybox for the small tools, iproute2's ip and ipvsadm.
#
# Topology model: the guest's root network namespace is the switch: it holds the L2
# segments as bridges (br0 by default) and nothing else — no addresses, no IPv6, no
# forwarding. Every host (client, director, real server) is a network namespace of its own
# whose interfaces are veths plugged into those bridges.
#
# Checks: lab_pass / lab_fail / lab_check record results; lab_done prints the summary and
# exits 0 only if nothing failed. Results are kept in files, so checks made in subshells
# count too. Every wait is bounded.
#
# Cost model: under software emulation every process start costs ~0.1 s (static busybox)
# to ~0.5 s (dynamically linked ip, ipvsadm, bash), more when the host is busy. So the
# helpers batch: one `ip -b` per host, one busybox sh per loop, ipvsadm -R for rule sets.

LAB_RUN=${LAB_RUN:-/tmp/lab}       # pass/fail records, background logs and pids
LAB_SRV=${LAB_SRV:-/srv}           # document roots of lab_http
LAB_IP=/usr/sbin/ip                # iproute2, by path: busybox applets would take their own ip
LAB_BB=/bin/busybox
mkdir -p "$LAB_RUN"
: >>"$LAB_RUN/pass"
: >>"$LAB_RUN/fail"

# ---- output and results ---------------------------------------------------------------

# Every line the helpers print starts with the guest's uptime, like the kernel's log.
# (No $(...) here: a fork of bash costs ~50 ms under emulation.)
_lab_say() { # TAG MESSAGE...
	local up tag=$1
	shift
	read -r up _ </proc/uptime
	printf '[%7s] %s %s\n' "$up" "$tag" "$*"
}

lab_log() { _lab_say lab: "$@"; }

lab_pass() {
	_lab_say PASS: "$@"
	printf '%s\n' "$*" >>"$LAB_RUN/pass"
}

lab_fail() {
	_lab_say FAIL: "$@"
	printf '%s\n' "$*" >>"$LAB_RUN/fail"
}

# lab_check DESCRIPTION CMD...: run CMD; PASS or FAIL by its exit status. Returns that status.
lab_check() {
	local desc=$1 rc=0
	shift
	"$@" || rc=$?
	if [ "$rc" -eq 0 ]; then lab_pass "$desc"; else lab_fail "$desc (exit $rc)"; fi
	return "$rc"
}

# lab_step DESCRIPTION CMD...: a set-up step: lab_check, and a failure ends the scenario
# (what follows would only fail for that reason, after waiting out its own bounds).
lab_step() {
	lab_check "$@" || lab_die "set-up step failed: $1"
}

# lab_die MESSAGE: a failure after which the scenario cannot go on.
lab_die() {
	lab_fail "$*"
	lab_done
}

# lab_show_logs [LINES]: the tail of every background process's log (directors, agents,
# servers), without debug lines: what a failed or timed-out run needs to be understood.
lab_show_logs() {
	local f
	for f in "$LAB_RUN"/*.log; do
		[ -e "$f" ] || continue
		printf -- '--- %s (last %s lines)\n' "$(basename "$f")" "${1:-60}"
		grep -v 'level=DEBUG' "$f" | tail -n "${1:-60}" | sed 's/^/  | /'
	done
	return 0
}

# lab_figure NAME VALUE [UNIT]: a measured number; lab.sh lists every figure after the run.
lab_figure() {
	printf '@@LAB-FIGURE %s=%s %s@@\n' "$1" "$2" "${3:-}"
}

# lab_done: summary line, a state dump if anything failed, exit 0 only on no failure.
lab_done() {
	local np nf
	np=$(wc -l <"$LAB_RUN/pass")
	nf=$(wc -l <"$LAB_RUN/fail")
	if [ "$nf" -gt 0 ]; then
		[ "${LAB_DUMP_ON_FAIL:-1}" = 1 ] && lab_show_logs && lab_dump
		lab_log "failed checks:"
		sed 's/^/  - /' "$LAB_RUN/fail"
	fi
	printf 'SCENARIO %s: %s checks passed, %s failed\n' "${LAB_SCENARIO:-scenario}" "$np" "$nf"
	[ "$nf" -eq 0 ] && exit 0
	exit 1
}

# ---- time and waiting -----------------------------------------------------------------

# lab_now_ms: wall-clock milliseconds (bash's EPOCHREALTIME), for figures.
lab_now_ms() {
	local t=${EPOCHREALTIME/./}
	echo $((t / 1000))
}

# lab_wait_for CMD TIMEOUT_SECONDS [INTERVAL]: poll CMD (a string, eval'd, output
# discarded) until it succeeds (return 0) or TIMEOUT_SECONDS pass (return 1). Interval
# defaults to 0.2 s. CMD runs at least once, even past the deadline.
lab_wait_for() {
	local cmd=$1 timeout=$2 interval=${3:-0.2} now deadline
	now=${EPOCHREALTIME/./}
	deadline=$((now + timeout * 1000000))
	while :; do
		eval "$cmd" >/dev/null 2>&1 && return 0
		now=${EPOCHREALTIME/./}
		[ "$now" -ge "$deadline" ] && return 1
		sleep "$interval"
	done
}

# ---- topology -------------------------------------------------------------------------

# lab_switch [BRIDGE...]: bridges in the guest's root namespace (default br0). Idempotent.
lab_switch() {
	local br
	[ $# -gt 0 ] || set -- br0
	# The switch is pure L2: no IPv6 (link-local addresses, MLD) of its own. Written to
	# /proc directly (the root namespace is ours) and never IPv4 settings, which new
	# namespaces would inherit.
	echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6
	echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6
	for br in "$@"; do
		[ -e "/sys/class/net/$br" ] && continue
		# No STP: ports forward at once. No snooping: multicast (the IPVS sync daemon,
		# VRRP) floods like on a dumb switch instead of depending on a querier.
		printf 'link add %s type bridge stp_state 0 forward_delay 0 mcast_snooping 0\nlink set %s up\n' \
			"$br" "$br" | $LAB_IP -b -
	done
}

# lab_link NAME IFNAME BRIDGE [ADDR/PFX...]: plug a new interface IFNAME of host NAME into
# BRIDGE, with addresses (IPv6 ones skip DAD so they are usable at once). Brings lo and
# IFNAME up. The bridge port is named NAME-IFNAME in the root namespace.
lab_link() {
	local name=$1 ifname=$2 br=$3 port addr
	shift 3
	lab_switch "$br"
	port="$name-$ifname"
	# Interface names have 15 characters at most: long ones get a numbered port name.
	[ ${#port} -le 15 ] || port="port$(ls /sys/class/net | wc -l)"
	# One ip run makes the pair with one end in the host, and plugs the other in.
	printf 'link add %s netns %s type veth peer name %s\nlink set %s master %s up\n' \
		"$ifname" "$name" "$port" "$port" "$br" | $LAB_IP -b -
	{
		echo "link set lo up"
		for addr in "$@"; do
			[ -n "$addr" ] || continue
			case $addr in
			*:*) echo "addr add $addr dev $ifname nodad" ;;
			*) echo "addr add $addr dev $ifname" ;;
			esac
		done
		echo "link set $ifname up"
	} | $LAB_IP -n "$name" -b -
}

# lab_host NAME IPV4/PFX [IPV6/PFX] [BRIDGE]: a host namespace with lo up and eth0 on
# BRIDGE (default br0). Pass "" for IPV6 to give a BRIDGE without an IPv6 address.
lab_host() {
	local name=$1 v4=$2 v6=${3:-} br=${4:-br0}
	lab_switch "$br"
	$LAB_IP netns add "$name"
	lab_link "$name" eth0 "$br" "$v4" "$v6"
}

# lab_exec NAME CMD...: run CMD inside host NAME.
lab_exec() {
	local name=$1
	shift
	$LAB_IP netns exec "$name" "$@"
}

# lab_sysctl NAME KEY=VALUE...: per-namespace sysctls (net.*), all in one process.
lab_sysctl() {
	local name=$1
	shift
	$LAB_IP netns exec "$name" $LAB_BB sysctl -q -w "$@" >/dev/null
}

# lab_router NAME: let host NAME forward (a director in NAT mode is the real servers' router).
lab_router() {
	lab_sysctl "$1" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# lab_dr_realserver NAME VIP...: what an LVS-DR real server needs: answer ARP only for
# its own addresses (arp_ignore=1), announce with the outgoing interface's address
# (arp_announce=2) — set BEFORE the VIPs appear — then each VIP on lo (/32 or /128).
lab_dr_realserver() {
	local name=$1 vip
	shift
	lab_sysctl "$name" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
		net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2
	for vip in "$@"; do
		case $vip in
		*:*) echo "addr add $vip/128 dev lo nodad" ;;
		*) echo "addr add $vip/32 dev lo" ;;
		esac
	done | $LAB_IP -n "$name" -b -
}

# lab_tun_realserver NAME VIP...: an LVS-TUN real server: tunl0 up with the VIPs, reverse
# path filtering off (the packets come in on tunl0, their replies leave on eth0), and the
# same ARP rules as DR since it may share the segment with the director.
lab_tun_realserver() {
	local name=$1 vip
	shift
	lab_sysctl "$name" net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
		net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		net.ipv4.conf.eth0.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0
	{
		echo "link set tunl0 up"
		for vip in "$@"; do echo "addr add $vip/32 dev tunl0"; done
	} | $LAB_IP -n "$name" -b -
}

# ---- processes ------------------------------------------------------------------------

# lab_bg NAME TAG CMD...: start CMD in the background inside host NAME; output goes to
# $LAB_RUN/TAG.log, the pid to $LAB_RUN/TAG.pid (ip netns exec execs CMD: same pid).
lab_bg() {
	local name=$1 tag=$2
	shift 2
	$LAB_IP netns exec "$name" "$@" >"$LAB_RUN/$tag.log" 2>&1 &
	echo $! >"$LAB_RUN/$tag.pid"
}

# lab_stop TAG [SIGNAL]: signal a lab_bg process (default TERM) and wait up to 5 s for it.
lab_stop() {
	local pid
	pid=$(cat "$LAB_RUN/$1.pid" 2>/dev/null) || return 0
	kill -"${2:-TERM}" "$pid" 2>/dev/null || true
	lab_wait_for "! kill -0 $pid" 5 0.1 || kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# lab_show_log TAG: print a lab_bg process's output, indented.
lab_show_log() {
	printf -- '--- %s.log\n' "$1"
	sed 's/^/  | /' "$LAB_RUN/$1.log" 2>/dev/null || true
}

# ---- HTTP -----------------------------------------------------------------------------

# lab_http NAME [PORT] [BODY]: busybox httpd in host NAME answering every GET / with BODY
# (default: NAME), so a client can tell which real server answered. httpd binds its port
# before it goes to the background, so it listens when this returns.
lab_http() {
	local name=$1 port=${2:-80} body=${3:-$1} root
	root=$LAB_SRV/$name-$port
	mkdir -p "$root"
	printf '%s\n' "$body" >"$root/index.html"
	lab_exec "$name" $LAB_BB httpd -p "$port" -h "$root" ||
		lab_fail "httpd on $name:$port did not start"
}

# lab_http_stop NAME: kill NAME's HTTP servers (busybox httpd daemonizes: find it in the
# netns; its comm is busybox, its command line says httpd).
lab_http_stop() {
	local pid
	for pid in $($LAB_IP netns pids "$1"); do
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ' httpd ' && kill "$pid"
	done
	return 0
}

# Debian's busybox 1.35 wget segfaults on -T (built without FEATURE_WGET_TIMEOUT): bound
# each GET with timeout(1) instead. LAB_GET_TIMEOUT seconds, default 3.
LAB_GET_TIMEOUT=${LAB_GET_TIMEOUT:-3}

# lab_fetch CLIENT URL: one GET from host CLIENT; prints the body.
lab_fetch() {
	lab_exec "$1" $LAB_BB timeout "$LAB_GET_TIMEOUT" $LAB_BB wget -q -O - "$2"
}

# lab_fetch_counts CLIENT URL N: N GETs, each a new connection; prints "ANSWER COUNT" lines
# sorted by answer, "(failed)" counting the GETs that got no answer.
lab_fetch_counts() {
	local client=$1 url=$2 n=$3
	# One netns entry and one busybox shell for the whole loop: cheap under emulation.
	lab_exec "$client" $LAB_BB sh -c '
		i=0
		while [ $i -lt "$3" ]; do
			i=$((i + 1))
			body=$(timeout "$2" wget -q -O - "$1" 2>/dev/null) || body="(failed)"
			echo "${body:-(empty)}"
		done' lab_fetch_counts "$url" "$LAB_GET_TIMEOUT" "$n" |
		sort | uniq -c | awk '{ print $2, $1 }'
}

# lab_expect_spread CLIENT URL N NAME...: N GETs must all succeed and every NAME must
# answer at least once. One PASS/FAIL line carrying the counts.
lab_expect_spread() {
	local client=$1 url=$2 n=$3 counts name ok=1
	shift 3
	counts=$(lab_fetch_counts "$client" "$url" "$n")
	for name in "$@"; do
		printf '%s\n' "$counts" | grep -q "^$name [0-9]" || ok=0
	done
	printf '%s\n' "$counts" | grep -q '^(failed) ' && ok=0
	counts=$(printf '%s' "$counts" | tr '\n' ' ')
	if [ "$ok" = 1 ]; then
		lab_pass "$client -> $url x$n answered by $* [$counts]"
	else
		lab_fail "$client -> $url x$n, want answers from $* [$counts]"
	fi
}

# ---- diagnostics ----------------------------------------------------------------------

# lab_dump: addresses, routes and IPVS tables of every namespace, for failure reports.
lab_dump() {
	local ns
	lab_log "---- state dump ----"
	echo "## switch (root namespace)"
	$LAB_IP -br link 2>&1 | sed 's/^/  /'
	for ns in $($LAB_IP netns list | awk '{ print $1 }'); do
		echo "## netns $ns"
		$LAB_IP -n "$ns" -br addr 2>&1 | sed 's/^/  /'
		$LAB_IP -n "$ns" route 2>&1 | sed 's/^/  route: /'
		$LAB_IP -n "$ns" neigh 2>&1 | sed 's/^/  neigh: /'
		lab_exec "$ns" ipvsadm -Ln 2>/dev/null | sed -n '4,$s/^/  ipvs: /p'
	done
	lab_log "---- end of dump ----"
}
