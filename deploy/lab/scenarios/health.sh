#!/bin/bash
# health — health checks on real IPVS. A NAT service (on-down remove, the default, with a
# quorum of 1 and a sorry server) and a DR service (on-down inhibit), both with HTTP checks
# of every real server. Killing rs2's HTTP server takes it out of every director's
# `ipvsadm -Sn` (NAT: removed; DR: weight 0) and, once it is out, no client request
# fails or reaches it; restarting it brings it back. With every real server down the
# NAT service's sorry server answers. Figures: from the kill to "out of rotation on every
# director", over three trials (one per real server), and back.
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh

SORRY_IP=10.100.0.30
SORRY_NAT_IP=10.100.2.30
# The lab runs under emulation: a 1 s timeout keeps a starved VM from failing healthy
# servers (raftlvs's default is 1 s too).
CHECK="http:/,interval=1s,timeout=1s,rise=2,fall=2"

rl_topology
rl_rs_dr_tun $RL_RS
# The sorry server: a NAT host like the real servers, answering "sorry".
lab_host sorry "$SORRY_IP/24" ""
ip -n sorry -b - <<EOF2
addr add $SORRY_NAT_IP/24 dev eth0
route add default via $RL_NAT_VIP dev eth0 onlink table 100
rule add from 10.100.2.0/24 table 100 priority 100
EOF2
lab_http sorry 80 sorry
rl_cluster

lab_step "service add web-nat (NAT, $CHECK, quorum 1, sorry server)" \
	rl_cli service add -t "$RL_NAT_VIP:80" -s rr -m --name web-nat --check "$CHECK" --quorum 1 --sorry "$SORRY_NAT_IP:80"
lab_step "service add web-dr (DR, $CHECK, on-down inhibit)" \
	rl_cli service add -t "$RL_DR_VIP:80" -s rr -g --name web-dr --check "$CHECK" --on-down inhibit
for rs in $RL_RS; do
	lab_step "server add web-nat ${RL_NAT_IP[$rs]}" rl_cli server add web-nat "${RL_NAT_IP[$rs]}:80"
	lab_step "server add web-dr ${RL_IP[$rs]}" rl_cli server add web-dr "${RL_IP[$rs]}:80"
done

# rules DOWN...: the expected tables with the real servers DOWN out of rotation.
rules() {
	local rs down nat=0
	{
		echo "-A -t $RL_NAT_VIP:80 -s rr"
		echo "-A -t $RL_DR_VIP:80 -s rr"
		for rs in $RL_RS; do
			down=0
			case " $* " in *" $rs "*) down=1 ;; esac
			if [ $down = 0 ]; then
				echo "-a -t $RL_NAT_VIP:80 -r ${RL_NAT_IP[$rs]}:80 -m -w 1"
				nat=1
			fi
			echo "-a -t $RL_DR_VIP:80 -r ${RL_IP[$rs]}:80 -g -w $((1 - down))"
		done
		[ $nat = 1 ] || echo "-a -t $RL_NAT_VIP:80 -r $SORRY_NAT_IP:80 -m -w 1"
	} | sort
}

# httpd_stop RS: kill RS's HTTP server (busybox httpd daemonizes: find it in the netns;
# its comm is busybox, its command line says httpd).
httpd_stop() {
	local pid
	for pid in $($LAB_IP netns pids "$1"); do
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ' httpd ' && kill "$pid"
	done
	return 0
}

rules >"$LAB_RUN/up.rules"
if lab_wait_for "rl_ipvs_equal $LAB_RUN/up.rules $RL_DIRECTORS" "$RL_BOUND" 0.5; then
	lab_pass "every director programmed both services with all three real servers (checked up)"
else
	rl_check_ipvs "$LAB_RUN/up.rules" "all three in rotation" $RL_DIRECTORS
	lab_die "the real servers never came up everywhere"
fi

# One trial per real server: three downs of one server within a minute would be a flap,
# which damping holds down for minutes (by design).
# A GET waits up to 5 s: a VM starved by its host stalls for seconds at a time.
LAB_GET_TIMEOUT=5
trial=0
for rs in $RL_RS; do
	trial=$((trial + 1))
	rules "$rs" >"$LAB_RUN/$rs-down.rules"
	t0=$(lab_now_ms)
	httpd_stop "$rs"
	if lab_wait_for "rl_ipvs_equal $LAB_RUN/$rs-down.rules $RL_DIRECTORS" "$RL_BOUND" 0.2; then
		ms=$(($(lab_now_ms) - t0))
		lab_pass "trial $trial: $rs's HTTP server killed: out of rotation on every director after $ms ms (NAT removed, DR weight 0)"
		lab_figure "health_out_of_rotation_ms_$trial" "$ms" ms
	else
		rl_check_ipvs "$LAB_RUN/$rs-down.rules" "$rs out of rotation" $RL_DIRECTORS
		lab_die "trial $trial: $rs was not taken out of rotation"
	fi
	for vip in $RL_NAT_VIP $RL_DR_VIP; do
		counts=$(lab_fetch_counts client "http://$vip/" 20 | tr '\n' ' ')
		lab_check "trial $trial: 20 GETs through $vip after detection: none failed, none reached $rs [$counts]" \
			sh -c "! echo '$counts' | grep -q -e '(failed)' -e $rs"
	done
	t0=$(lab_now_ms)
	lab_http "$rs" 80
	if lab_wait_for "rl_ipvs_equal $LAB_RUN/up.rules $RL_DIRECTORS" "$RL_BOUND" 0.2; then
		ms=$(($(lab_now_ms) - t0))
		lab_pass "trial $trial: $rs's HTTP server back: in rotation on every director after $ms ms (rise 2)"
		lab_figure "health_back_in_rotation_ms_$trial" "$ms" ms
	else
		lab_die "trial $trial: $rs did not come back"
	fi
done

# Every real server down: the NAT service's quorum is lost and the sorry server answers.
for rs in $RL_RS; do httpd_stop "$rs"; done
rules $RL_RS >"$LAB_RUN/all-down.rules"
lab_check "every real server down: every director programs only the sorry server for NAT, weight 0 for DR" \
	lab_wait_for "rl_ipvs_equal $LAB_RUN/all-down.rules $RL_DIRECTORS" "$RL_BOUND" 0.2
lab_expect_spread client "http://$RL_NAT_VIP/" 6 sorry
for rs in $RL_RS; do lab_http "$rs" 80; done
lab_check "the real servers back: both services as at first on every director" \
	lab_wait_for "rl_ipvs_equal $LAB_RUN/up.rules $RL_DIRECTORS" "$RL_BOUND" 0.2
echo "---- raftlvs status"
rl_cli status
echo "---- raftlvs health"
rl_cli health
rl_done
