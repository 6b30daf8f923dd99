#!/bin/bash
# keepalived — the migration path, with keepalived itself as the oracle. One
# keepalived.conf (NAT with HTTP and TCP checks, thresholds and a sorry server; UDP with
# one-packet scheduling; DR with sh-port and /24 persistence; TUN; a firewall mark) runs
# first through Debian's keepalived (VRRP master alone, holding the VIPs) in a namespace
# of its own, checking the lab's real servers; its `ipvsadm -Sn` is kept and keepalived
# stopped (it drops its VIPs and its table).
# Then `raftlvs import keepalived --apply` of the same file into the cluster: once the
# imported checks pass, every director's `ipvsadm -Sn` and `raftlvs save` must be
# keepalived's table, line for line. On that cluster, the rest of the migration path:
# `export | diff | apply -f` changes nothing, an edit of the file applies and is undone,
# writes through one director are read at once through another, the directors ran their
# notify hooks, and `status --connections` lists what `ipvsadm -Lnc` lists.
# shellcheck source=../lib.sh
. /lab/lib.sh
# shellcheck source=../cluster.sh
. /lab/cluster.sh

KA=/usr/sbin/keepalived
KA_IP=10.100.0.5
CONF=$LAB_RUN/keepalived.conf
[ -x "$KA" ] || lab_die "no $KA in the guest (lab.sh packs it for this scenario: keepalived on the host)"

# Every service starts its real servers down (alpha) and adds one only once its checker
# passed: keepalived's table is complete only when every checker has passed.
cat >"$CONF" <<'EOF'
! The lab's keepalived.conf (deploy/lab/scenarios/keepalived.sh).
global_defs {
    router_id lab
}
vrrp_instance lab {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.100.0.100
        10.100.0.101
        10.100.0.102
    }
}
virtual_server 10.100.0.100 80 {
    delay_loop 2
    lvs_sched wrr
    lvs_method NAT
    protocol TCP
    alpha
    sorry_server 10.100.2.30 80
    real_server 10.100.2.21 80 {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
        }
    }
    real_server 10.100.2.22 80 {
        weight 2
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
        }
    }
    real_server 10.100.2.23 80 {
        weight 3
        uthreshold 100
        lthreshold 10
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 10.100.0.100 53 {
    delay_loop 2
    lvs_sched rr
    lvs_method NAT
    protocol UDP
    ops
    alpha
    real_server 10.100.2.21 53 {
        TCP_CHECK {
            connect_port 80
            connect_timeout 1
        }
    }
    real_server 10.100.2.22 53 {
        TCP_CHECK {
            connect_port 80
            connect_timeout 1
        }
    }
}
virtual_server 10.100.0.101 80 {
    delay_loop 2
    lvs_sched sh
    sh-port
    lvs_method DR
    persistence_timeout 600
    persistence_granularity 255.255.255.0
    protocol TCP
    alpha
    real_server 10.100.0.21 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.100.0.22 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.100.0.23 80 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server 10.100.0.102 7 {
    delay_loop 2
    lvs_sched rr
    lvs_method TUN
    protocol TCP
    alpha
    real_server 10.100.0.21 7 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.100.0.22 7 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
virtual_server fwmark 5 {
    delay_loop 2
    lvs_sched wlc
    lvs_method DR
    persistence_timeout 60
    alpha
    real_server 10.100.0.21 0 {
        weight 2
        TCP_CHECK {
            connect_port 80
            connect_timeout 1
        }
    }
    real_server 10.100.0.23 0 {
        weight 4
        TCP_CHECK {
            connect_port 80
            connect_timeout 1
        }
    }
}
EOF
RS_LINES=12 # real servers in the file

rl_topology
rl_rs_dr_tun $RL_RS

# ---- keepalived, the oracle -------------------------------------------------------------
# keepalived whole, VRRP included: alone on the segment it becomes master and holds the
# VIPs, as it would in production, so that the NAT real servers' replies (routed via
# the NAT VIP, see cluster.sh) come back to its checkers.
lab_host ka "$KA_IP/24" ""
ip -n ka route add 10.100.2.0/24 dev eth0
lab_bg ka keepalived "$KA" --dont-fork --log-console --log-detail --use-file "$CONF" \
	--pid /run/keepalived-ka.pid --checkers_pid /run/keepalived-ka-checkers.pid --vrrp_pid /run/keepalived-ka-vrrp.pid
# complete: every real server in, and the sorry server (in while the quorum was not yet
# met) gone.
ka_complete() {
	local t
	t=$(lab_exec ka ipvsadm -Sn) || return 1
	[ "$(printf '%s\n' "$t" | grep -c '^-a ')" = "$RS_LINES" ] && ! printf '%s\n' "$t" | grep -q 10.100.2.30
}
t0=$(lab_now_ms)
if lab_wait_for ka_complete "$RL_BOUND" 0.5; then
	lab_pass "keepalived's checkers passed for all $RS_LINES real servers: its table is complete after $(($(lab_now_ms) - t0)) ms"
else
	lab_show_log keepalived
	lab_exec ka ipvsadm -Sn | sed 's/^/    /'
	lab_die "keepalived never had every real server up"
fi
rl_ipvs ka >"$LAB_RUN/keepalived.rules"
echo "---- keepalived's ipvsadm -Sn (the oracle)"
sed 's/^/    /' "$LAB_RUN/keepalived.rules"
grep -q ' success' "$LAB_RUN/keepalived.log" &&
	lab_pass "keepalived's log shows its checkers' successes" ||
	lab_fail "no checker success in keepalived's log"
lab_stop keepalived TERM
lab_check "keepalived stopped and took its table and VIPs with it" \
	lab_wait_for '[ -z "$(lab_exec ka ipvsadm -Sn)" ] && ! ip -n ka -o addr show dev eth0 | grep -q " $RL_NAT_VIP/"' 20 0.5

# ---- the same file into raftlvs ---------------------------------------------------------
cat >"$LAB_RUN/notify.sh" <<EOF
#!/bin/sh
echo "\$RAFTLVS_DIRECTOR \$*" >>$LAB_RUN/notify.events
EOF
chmod +x "$LAB_RUN/notify.sh"
RL_DIRECTOR_FLAGS="--notify $LAB_RUN/notify.sh"
rl_cluster
lab_exec client "$RL_BIN" import keepalived "$CONF" --offline --save --config-id lab | sort >"$LAB_RUN/plan.rules"
lab_check "raftlvs import --offline --save plans keepalived's table" cmp -s "$LAB_RUN/plan.rules" "$LAB_RUN/keepalived.rules" ||
	diff "$LAB_RUN/keepalived.rules" "$LAB_RUN/plan.rules" | sed 's/^/    /'
echo "---- raftlvs import keepalived --apply"
lab_step "raftlvs import keepalived $CONF --apply" rl_cli import keepalived "$CONF" --apply --config-id lab
t0=$(lab_now_ms)
if lab_wait_for "rl_ipvs_equal $LAB_RUN/keepalived.rules $RL_DIRECTORS" "$RL_BOUND" 0.5; then
	lab_pass "every director's ipvsadm -Sn is keepalived's, line for line, $(($(lab_now_ms) - t0)) ms after the import (its checks passed)"
	lab_figure keepalived_import_to_table_ms "$(($(lab_now_ms) - t0))" ms
else
	rl_check_ipvs "$LAB_RUN/keepalived.rules" "keepalived's table" $RL_DIRECTORS
	rl_cli health
	lab_die "the imported table is not keepalived's"
fi
rl_cli save | sort >"$LAB_RUN/save.rules"
lab_check "raftlvs save is keepalived's table too" cmp -s "$LAB_RUN/save.rules" "$LAB_RUN/keepalived.rules"
rl_cli import keepalived "$CONF" --config-id lab >"$LAB_RUN/reimport.out"
lab_check "importing the file again plans nothing" grep -q '^  nothing to change$' "$LAB_RUN/reimport.out"

# ---- declarative: export | diff | apply -------------------------------------------------
rl_cli export >"$LAB_RUN/lb.yaml"
rl_cli diff -f "$LAB_RUN/lb.yaml" --prune >"$LAB_RUN/diff.out"
lab_check "raftlvs export, then diff -f --prune of it: no changes" grep -q '^no changes$' "$LAB_RUN/diff.out"
rl_cli apply -f "$LAB_RUN/lb.yaml" --prune >"$LAB_RUN/apply.out"
lab_check "raftlvs apply -f --prune of the export: no changes" grep -q '^no changes$' "$LAB_RUN/apply.out"
# The NAT service's third real server from weight 3 to 5, through the file.
awk '/addr: 10.100.2.23/ { hit = 1 } hit && /weight: 3/ { sub(/weight: 3/, "weight: 5"); hit = 0 } { print }' \
	"$LAB_RUN/lb.yaml" >"$LAB_RUN/lb-edited.yaml"
sed 's/-r 10.100.2.23:80 -m -w 3/-r 10.100.2.23:80 -m -w 5/' "$LAB_RUN/keepalived.rules" | sort >"$LAB_RUN/edited.rules"
lab_step "raftlvs apply -f of an edited file" rl_cli apply -f "$LAB_RUN/lb-edited.yaml"
lab_check "every director programs the edit" \
	lab_wait_for "rl_ipvs_equal $LAB_RUN/edited.rules $RL_DIRECTORS" "$RL_BOUND" 0.5
lab_step "raftlvs apply -f of the export again" rl_cli apply -f "$LAB_RUN/lb.yaml"
lab_check "every director is back to keepalived's table" \
	lab_wait_for "rl_ipvs_equal $LAB_RUN/keepalived.rules $RL_DIRECTORS" "$RL_BOUND" 0.5

# ---- read-your-writes across directors ---------------------------------------------------
ryw=0
for w in 6 7 8; do
	lab_exec client "$RL_BIN" --timeout 20s --api "${RL_IP[d2]}:7080" server edit tcp-10.100.0.100-80 10.100.2.23:80 -w "$w" >/dev/null &&
		lab_exec client "$RL_BIN" --timeout 20s --api "${RL_IP[d3]}:7080" save | grep -q -- "-r 10.100.2.23:80 -m -w $w\$" &&
		ryw=$((ryw + 1))
done
lab_check "3 writes through d2, each read at once through d3 by another CLI run: $ryw seen" test "$ryw" = 3
rl_cli server edit tcp-10.100.0.100-80 10.100.2.23:80 -w 3 >/dev/null

# ---- notify hooks ------------------------------------------------------------------------
leader=$(rl_leader)
lab_check "the leader $leader ran its leader hook" grep -q "^$leader leader $leader $leader\$" "$LAB_RUN/notify.events"
for d in ${RL_DIRECTORS/$leader/}; do
	lab_check "$d ran its follower hook" grep -q "^$d follower $d $leader\$" "$LAB_RUN/notify.events"
done
for d in $RL_DIRECTORS; do
	lab_check "$d ran the health hook as the imported checks passed" \
		grep -q "^$d health tcp-10.100.0.100-80 10.100.2.21 80 up\$" "$LAB_RUN/notify.events"
done

# ---- status --connections against ipvsadm -Lnc -------------------------------------------
lab_bg client conn $LAB_BB sh -c "{ echo hello; sleep 60; } | $LAB_BB nc $RL_TUN_VIP 7"
lab_wait_for "[ -s $LAB_RUN/conn.log ]" "$RL_BOUND" 0.2 || lab_fail "no answer through $RL_TUN_VIP:7"
# Without the expiry (seconds apart): state, source, virtual, destination.
conns() { awk 'NR > 2 { print $1, $3, $4, $5, $6 }' | sort; }
lab_exec "$leader" ipvsadm -Lnc | conns >"$LAB_RUN/lnc.conns"
rl_cli --api "${RL_IP[$leader]}:7080" status --connections | conns >"$LAB_RUN/raftlvs.conns"
if grep -q "^TCP ESTABLISHED ${RL_IP[client]}:[0-9]* $RL_TUN_VIP:7 " "$LAB_RUN/lnc.conns" && cmp -s "$LAB_RUN/lnc.conns" "$LAB_RUN/raftlvs.conns"; then
	lab_pass "raftlvs status --connections on $leader lists what ipvsadm -Lnc does, the client's connection through $RL_TUN_VIP:7 included"
else
	lab_fail "raftlvs status --connections differs from ipvsadm -Lnc on $leader"
	diff "$LAB_RUN/lnc.conns" "$LAB_RUN/raftlvs.conns" | sed 's/^/    /'
fi
lab_stop conn
echo "---- raftlvs status"
rl_cli status
rl_done
