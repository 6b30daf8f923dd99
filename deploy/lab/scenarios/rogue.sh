#!/bin/bash
# rogue — secure by default: a director with no certificate cannot join, a bare TCP
# listener cannot be added as a voter, a node with the gossip key and no agent
# certificate registers no real server, and the API refuses callers without credentials
# (401) or with too little access (403).
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh

ROGUE=10.100.0.66
rl_topology
lab_host rogue "$ROGUE/24" ""
rl_cluster
rl_cli service add -t "$RL_DR_VIP:80" -s rr --forward dr --name web >/dev/null || lab_fail "add service web"

# 1. A director that has the addresses and the gossip key, and no certificate, asks to
# join (as the issue's reporter did: --witness --join …). It speaks plain HTTP; the
# directors speak HTTPS only.
mkdir -p -m 700 /var/lib/raftlvs-rogue
$LAB_IP netns exec rogue "$RL_BIN" director --id rogue --witness --insecure --join "$RAFTLVS_API" \
	--data-dir /var/lib/raftlvs-rogue --raft-addr "$ROGUE:7000" --api-addr "$ROGUE:7080" \
	--gossip-addr "$ROGUE:7946" --gossip-key "$RL_GOSSIP_KEY" $RL_RAFT_FLAGS >>"$LAB_RUN/rogue.log" 2>&1 &
echo $! >"$LAB_RUN/rogue.pid"
lab_wait_for "grep -q 'join the cluster' $LAB_RUN/rogue.log" "$RL_BOUND" 0.5 || lab_fail "the rogue director never tried to join"
sleep 3
voters=$(rl_json d1 '[.node.voters[].id] | join(",")')
[ "$voters" = d1,d2,d3 ] && lab_pass "the rogue director without a certificate is no voter (voters: $voters)" ||
	lab_fail "voters are $voters"
grep -m1 'join the cluster' "$LAB_RUN/rogue.log" | sed 's/^/    /'
rl_kill rogue

# 2. A ghost: a bare TCP listener at a Raft address, joined by an admin. The leader's
# proof (a TLS handshake there must present a director certificate for that id) fails.
lab_bg rogue ghost $LAB_BB nc -ll -p 7000 -e /bin/true
if out=$(rl_cli join --id ghost --raft "$ROGUE:7000" --api "$ROGUE:7080" 2>&1); then
	lab_fail "a bare listener was joined as a voter: $out"
else
	echo "$out" | grep -q "does not speak TLS\|did not complete a TLS handshake" &&
		lab_pass "joining a bare TCP listener is refused: it does not prove a director certificate" ||
		lab_fail "joining the ghost failed, but not for its missing certificate: $out"
	echo "    $out"
fi
[ "$(rl_json d1 '.node.voters | length')" = 3 ] || lab_fail "the ghost changed the voters"

# 3. A node with the gossip key and no agent certificate announces itself as a real
# server of web: the leader's registrar refuses its metadata.
$LAB_IP netns exec rogue "$RL_BIN" agent --id rogue-rs --addr "$ROGUE" --insecure \
	--join "${RL_IP[d1]}:7946" --gossip-key "$RL_GOSSIP_KEY" --gossip-addr "$ROGUE:7947" \
	--state-file /var/lib/raftlvs-rogue/agent.json --service web >>"$LAB_RUN/agent-rogue.log" 2>&1 &
echo $! >"$LAB_RUN/agent-rogue.pid"
leader=$(rl_leader)
lab_wait_for "grep -q 'gossip metadata refused.*rogue-rs' $LAB_RUN/$leader.log" "$RL_BOUND" 0.5 &&
	lab_pass "the leader refuses the gossip metadata of an agent without a certificate" ||
	lab_fail "the leader never refused rogue-rs"
sleep 2
n=$(rl_json d1 "[.services[].real_servers[] | select(.addr == \"$ROGUE\")] | length")
[ "$n" = 0 ] && lab_pass "no real server at $ROGUE was registered" || lab_fail "$n real servers at $ROGUE"
rl_kill agent-rogue

# 4. The API: no credentials is 401, too little access is 403, each saying what is missing.
code=$(lab_exec client curl -s -o "$LAB_RUN/anon.json" -w '%{http_code}' --cacert "$RAFTLVS_CA" "https://${RL_IP[d2]}:7080/v1/state")
[ "$code" = 401 ] && lab_pass "GET /v1/state without credentials: 401 ($(jq -r .error "$LAB_RUN/anon.json"))" ||
	lab_fail "GET /v1/state without credentials answered $code"
ro=$(rl_cli token create --role operator --access read) || lab_fail "read token"
RAFTLVS_CERT= RAFTLVS_KEY= lab_exec client env RAFTLVS_TOKEN="$ro" RAFTLVS_CERT= RAFTLVS_KEY= "$RL_BIN" --timeout 20s status >/dev/null &&
	lab_pass "a read token may read" || lab_fail "a read token could not read"
if out=$(lab_exec client env RAFTLVS_TOKEN="$ro" RAFTLVS_CERT= RAFTLVS_KEY= "$RL_BIN" --timeout 20s service rm web 2>&1); then
	lab_fail "a read token removed a service"
else
	echo "$out" | grep -q "needs operate" && lab_pass "a read token may not write: $out" || lab_fail "refused, but: $out"
fi
lab_exec client "$RL_BIN" token rm "$ro" >/dev/null || lab_fail "revoke the read token"
if out=$(lab_exec client env RAFTLVS_TOKEN="$ro" RAFTLVS_CERT= RAFTLVS_KEY= "$RL_BIN" --timeout 20s status 2>&1); then
	lab_fail "a revoked token still reads"
else
	echo "$out" | grep -q "revoked" && lab_pass "a revoked token is refused: $out" || lab_fail "refused, but: $out"
fi
rl_done
