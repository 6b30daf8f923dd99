#!/bin/bash
# demo — the guided tour behind `make demo`: three raftlvs directors in front of three web
# servers, traffic through the virtual IP, then the leader crashes and the client carries on.
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh
LAB_GET_TIMEOUT=2

say() { printf '%s\n' "$@"; }
section() { printf '\n==== %s ====\n' "$*"; }
show() { # TITLE CMD...: a command's output, indented
	local title=$1
	shift
	printf -- '-- %s\n' "$title"
	"$@" 2>&1 | sed 's/^/   /'
}
VIP=$RL_DR_VIP

section "1. The stage"
say "Everything runs inside this VM, on one virtual Ethernet switch, each machine in a" \
	"network namespace of its own:" \
	"  client     10.100.0.10   sends HTTP requests to the virtual IP $VIP" \
	"  d1 d2 d3   10.100.0.2-4  the load balancers (raftlvs directors, real Linux IPVS)" \
	"  rs1-rs3    10.100.0.21-23 web servers; each answers with its own name" \
	"The directors agree on the configuration through Raft. Every director programs the" \
	"same IPVS table; the Raft leader alone holds the virtual IP, so the client's packets" \
	"reach it. With direct routing (DR) the web servers answer the client directly."
rl_topology
rl_rs_dr_tun $RL_RS

section "2. Three directors form a secure cluster"
say "d1 starts with --bootstrap: it creates the cluster's CA, its own certificate and an" \
	"admin certificate for the CLI. Each joiner needs a token from the cluster, one line each:"
rl_director d1
lab_wait_for 'test "$(rl_json d1 .node.leader_id)" = d1' "$RL_BOUND" 0.5 || lab_die "d1 did not bootstrap"
for d in d2 d3; do
	tok=$(rl_token director) || lab_die "no token for $d"
	say "   \$ raftlvs token create --role director            -> ${tok:0:24}... (single-use, 1 h)" \
		"   \$ raftlvs director --id $d --join ${RL_IP[d1]}:7080 --token ${tok:0:24}..."
	RL_JOIN_TOKEN=$tok rl_director "$d"
done
lab_wait_for 'rl_converged_voters 3' "$RL_BOUND" 0.5 || lab_die "the three directors did not form one cluster"
say "Raft between the directors is mutual TLS (director certificates only), the API is HTTPS," \
	"and every command below authenticates (here with the admin certificate)."
show "raftlvs status (the cluster part)" sh -c "ip netns exec client $RL_BIN status | sed -n '1,/^\$/p'"

section "3. One virtual service, three real servers"
say "The operator talks to any director; the command is replicated to all of them." \
	"wrr (weighted round robin) with weights 1, 2 and 3: rs3 should get half the requests."
for cmd in "service add -t $VIP:80 -s wrr --forward dr --name web" \
	"server add web ${RL_IP[rs1]} -w 1" "server add web ${RL_IP[rs2]} -w 2" "server add web ${RL_IP[rs3]} -w 3"; do
	say "\$ raftlvs $cmd"
	# shellcheck disable=SC2086
	rl_cli $cmd | sed 's/^/   /' || lab_fail "raftlvs $cmd"
done
printf '%s\n' "-A -t $VIP:80 -s wrr" "-a -t $VIP:80 -r ${RL_IP[rs1]}:80 -g -w 1" \
	"-a -t $VIP:80 -r ${RL_IP[rs2]}:80 -g -w 2" "-a -t $VIP:80 -r ${RL_IP[rs3]}:80 -g -w 3" |
	sort >"$LAB_RUN/want.rules"
lab_wait_for "rl_ipvs_equal $LAB_RUN/want.rules $RL_DIRECTORS" "$RL_BOUND" 0.5 ||
	lab_fail "not every director programmed the service"
leader=$(rl_leader)
lab_wait_for "test \"\$(rl_vip_holder $VIP)\" = $leader" "$RL_BOUND" 0.3 || lab_fail "$leader never claimed $VIP"
show "raftlvs status" rl_cli status
for d in $RL_DIRECTORS; do
	role=follower
	[ "$d" = "$leader" ] && role=leader
	show "ipvsadm -Ln inside $d ($role): the kernel's own view, the same on every director" \
		sh -c "ip netns exec $d ipvsadm -Ln | tail -n +3"
done
say "-- who holds $VIP: $(rl_vip_holder $VIP) (the leader)"

section "4. Traffic"
say "The client sends 30 requests to http://$VIP/, each on a new connection:"
counts=$(lab_fetch_counts client "http://$VIP/" 30)
printf '%s\n' "$counts" | awk '{ printf "   %-9s %3d  ", $1, $2; for (i = 0; i < $2; i++) printf "#"; print "" }'
[ "$(echo $counts)" = "rs1 5 rs2 10 rs3 15" ] && lab_pass "30 requests spread 5/10/15 as the weights say" ||
	lab_fail "30 requests spread [$(echo $counts)], wanted 5/10/15"

section "5. The leader crashes"
old=$leader
old_mac=$(rl_mac "$old")
say "The client now asks for http://$VIP/ every 100 ms and notes every answer." \
	"Then we crash $old, the leader: kill -9 its raftlvs and pull its network cable" \
	"(a crashed machine neither forwards nor answers ARP any more)." \
	"The client's ARP entry for $VIP before the crash: $(rl_neigh client $VIP)   ($old's MAC is $old_mac)"
rl_probe_start "http://$VIP/"
lab_wait_for "[ \$(wc -l <$LAB_RUN/probe.out) -ge 10 ]" "$RL_BOUND" 0.2
rl_crash "$old"
kill_up=$(cat "$LAB_RUN/crash.up")
say "   $(printf '%8.2f' "$kill_up") s  $old crashed"
if new=$(rl_new_leader "$old"); then
	say "   $(cut -d' ' -f1 /proc/uptime | xargs printf '%8.2f') s  the survivors agree: $new is the new leader (seen by polling)"
else
	rl_probe_stop
	lab_die "no new leader after the crash of $old"
fi
lab_wait_for "rl_vip_holder $VIP | grep -qw $new" "$RL_BOUND" 0.2 || lab_fail "$new never claimed $VIP"
new_mac=$(rl_mac "$new")
lab_wait_for "rl_neigh client $VIP | grep -q '^$new_mac '" "$RL_BOUND" 0.2 ||
	lab_fail "the client's ARP entry for $VIP never moved to $new"
lab_wait_for "awk -v k=$kill_up '\$1 > k + 2' $LAB_RUN/probe.out | grep -q ." "$RL_BOUND" 0.2
rl_probe_stop
say "" "What the client saw (each line: when a request was sent, when its answer came, who answered):"
awk -v k="$kill_up" '$2 > k - 0.6 && $1 < k + 6' "$LAB_RUN/probe.out" | sort -n -k2 | awk -v k="$kill_up" '
	!said && $2 > k { print "   ----- crash of the leader -----"; said = 1 }
	{ printf "   sent %+6.2f s  answered %+6.2f s  by %s\n", $1 - k, $2 - k, $3 }' | head -n 24
say "" "After the crash:" \
	"   new leader                      : $new" \
	"   holder of $VIP          : $(rl_vip_holder $VIP | sed "s/\b$old\b/$old (crashed, cable out)/")" \
	"   client's ARP entry for $VIP : $(rl_neigh client $VIP)   ($new's MAC is $new_mac)"
show "raftlvs status, asked of $new" sh -c "ip netns exec client $RL_BIN --api ${RL_IP[$new]}:7080 status"
say "The client carries on: 12 more requests:"
lab_expect_spread client "http://$VIP/" 12 rs1 rs2 rs3

section "6. Figures"
outage=$(rl_outage_ms "$kill_up") || outage=
if [ -n "$outage" ]; then
	say "   client-side outage: $outage ms  (last answer before the crash -> first answer to a request sent after it)"
	lab_figure demo_failover_outage_ms "$outage" ms
	lab_pass "the client saw an outage of $outage ms"
else
	lab_fail "could not measure the outage (no answer before or after the crash)"
fi
say "   Raft timings in this lab: ${RL_RAFT_FLAGS:-raftlvs defaults} (emulated CPU; see deploy/lab/README.md)"
rl_done
