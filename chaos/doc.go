// Package chaos is raftlvs's fault-injection harness: real `raftlvs director --vip-only`
// processes in network namespaces of their own (internal/netlab), clients writing and
// reading through random directors, a nemesis that crashes, partitions, freezes,
// restarts and fills disks, and the checks that must hold whatever it did: the history
// is linearizable (porcupine), no acknowledged write is lost, the directors converge,
// nothing panics. It also measures how long two directors answered ARP for the VIP at
// once. TestChaos runs it; see DESIGN.md.
package chaos
