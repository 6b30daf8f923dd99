#!/bin/bash
# smoke — proves the kernel lab itself, without raftlvs: IPVS in NAT, DR and TUN with real
# traffic, IPv6 DR, the ipip module and tunl0, and the connection-sync daemon (master and
# backup). Every raftlvs scenario builds on what this one checks.
#
#   br0 (front) 10.100.0.0/24, fd00:100::/64        br1 (back) 10.100.1.0/24
#     client  .10   ::10                               dir1 eth1 .1   (NAT gateway)
#     dir1    .2    ::2   VIPs .100 .101 .102 ::101    rs1 .11   (NAT, default via .1)
#     dir2    .3    ::3   sync backup                  rs2 .12   (NAT, default via .1)
#     rs3     .21   ::21  DR + TUN real server
#     rs4     .22   ::22  DR + TUN real server
# shellcheck source=../lib.sh
. /lab/lib.sh

NAT_VIP=10.100.0.100 DR_VIP=10.100.0.101 TUN_VIP=10.100.0.102 DR_VIP6=fd00:100::101

# ---- topology ----
lab_log "building the topology"
lab_switch br0 br1
lab_host client 10.100.0.10/24 fd00:100::10/64
lab_host dir1 10.100.0.2/24 fd00:100::2/64
lab_link dir1 eth1 br1 10.100.1.1/24
lab_host dir2 10.100.0.3/24 fd00:100::3/64
lab_host rs1 10.100.1.11/24 "" br1
lab_host rs2 10.100.1.12/24 "" br1
lab_host rs3 10.100.0.21/24 fd00:100::21/64
lab_host rs4 10.100.0.22/24 fd00:100::22/64
ip -n rs1 route add default via 10.100.1.1
ip -n rs2 route add default via 10.100.1.1
lab_router dir1

# The VIPs live on the director's front interface, as a raftlvs leader would put them.
ip -n dir1 -b - <<EOF
addr add $NAT_VIP/32 dev eth0
addr add $DR_VIP/32 dev eth0
addr add $TUN_VIP/32 dev eth0
addr add $DR_VIP6/128 dev eth0 nodad
EOF

lab_dr_realserver rs3 $DR_VIP $DR_VIP6
lab_dr_realserver rs4 $DR_VIP $DR_VIP6
lab_tun_realserver rs3 $TUN_VIP
lab_tun_realserver rs4 $TUN_VIP
for rs in rs1 rs2 rs3 rs4; do lab_http $rs 80; done
lab_log "topology ready"

# ---- kernel pieces ----
lab_check "ip_vs is loaded (/proc/net/ip_vs)" test -e /proc/net/ip_vs
lab_check "modprobe ipip" modprobe ipip
lab_check "tunl0 exists in a fresh namespace" ip -n rs1 link show tunl0
missing=
for s in rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf; do
	grep -q "^ip_vs_$s " /proc/modules || missing="$missing $s"
done
lab_check "every IPVS scheduler module is loaded${missing:+ (missing:$missing)}" test -z "$missing"

# ---- IPVS services in dir1: one ipvsadm -R for the whole rule set ----
lab_check "program NAT (rr), DR (rr), TUN (wrr) and IPv6 DR services" lab_exec dir1 ipvsadm -R <<EOF
-A -t $NAT_VIP:80 -s rr
-a -t $NAT_VIP:80 -r 10.100.1.11:80 -m -w 1
-a -t $NAT_VIP:80 -r 10.100.1.12:80 -m -w 1
-A -t $DR_VIP:80 -s rr
-a -t $DR_VIP:80 -r 10.100.0.21:80 -g -w 1
-a -t $DR_VIP:80 -r 10.100.0.22:80 -g -w 1
-A -t $TUN_VIP:80 -s wrr
-a -t $TUN_VIP:80 -r 10.100.0.21:80 -i -w 1
-a -t $TUN_VIP:80 -r 10.100.0.22:80 -i -w 1
-A -t [$DR_VIP6]:80 -s rr
-a -t [$DR_VIP6]:80 -r [fd00:100::21]:80 -g -w 1
-a -t [$DR_VIP6]:80 -r [fd00:100::22]:80 -g -w 1
EOF
rules=$(lab_exec dir1 ipvsadm -Sn)
lab_check "ipvsadm -Sn shows 4 services and 8 destinations" \
	test "$(grep -c '^-A ' <<<"$rules")/$(grep -c '^-a ' <<<"$rules")" = 4/8

# ---- sync daemon: dir1 master, dir2 backup, on the front segment ----
lab_check "start master sync daemon in dir1" \
	lab_exec dir1 ipvsadm --start-daemon master --mcast-interface eth0 --syncid 1
lab_check "start backup sync daemon in dir2" \
	lab_exec dir2 ipvsadm --start-daemon backup --mcast-interface eth0 --syncid 1
master=$(lab_exec dir1 ipvsadm -L --daemon)
backup=$(lab_exec dir2 ipvsadm -L --daemon)
echo "dir1: $master"
echo "dir2: $backup"
lab_check "ipvsadm -L --daemon shows the master in dir1" \
	grep -q 'master sync daemon (mcast=eth0, syncid=1' <<<"$master"
lab_check "ipvsadm -L --daemon shows the backup in dir2" \
	grep -q 'backup sync daemon (mcast=eth0, syncid=1' <<<"$backup"

# ---- traffic through every VIP ----
lab_check "a NAT real server answers its router directly" \
	test "$(lab_fetch dir1 http://10.100.1.11/)" = rs1
lab_check "a DR real server answers the client directly" \
	test "$(lab_fetch client http://10.100.0.21/)" = rs3
t0=$(lab_now_ms)
lab_expect_spread client "http://$NAT_VIP/" 10 rs1 rs2
lab_figure smoke_nat_10_gets_ms $(($(lab_now_ms) - t0)) ms
lab_expect_spread client "http://$DR_VIP/" 10 rs3 rs4
lab_expect_spread client "http://$TUN_VIP/" 10 rs3 rs4
lab_expect_spread client "http://[$DR_VIP6]/" 10 rs3 rs4

# The master batches sync messages (flushed about every 2 s); the backup must end up with
# copies of the client's connections.
if lab_wait_for '[ "$(lab_exec dir2 ipvsadm -Lnc | grep -c 10.100.0.10:)" -gt 0 ]' 10; then
	lab_pass "backup dir2 holds $(lab_exec dir2 ipvsadm -Lnc | grep -c 10.100.0.10:) synced connections"
else
	lab_fail "backup dir2 received no synced connection"
fi

echo "---- ipvsadm -Sn (dir1)"
echo "$rules"
echo "---- ipvsadm -Ln --stats (dir1)"
lab_exec dir1 ipvsadm -Ln --stats
# With --bin, also show that the raftlvs binary runs in the guest (the smoke needs none).
if [ -x /bin/raftlvs ]; then
	lab_check "/bin/raftlvs runs in the guest" sh -c '/bin/raftlvs --help >/dev/null'
fi
lab_done
