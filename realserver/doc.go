// Package realserver is the raftlvs agent that runs on each real server. It learns each
// service's VIP and forwarding method from the directors and configures its own kernel:
// for DR the ARP sysctls and then the VIP on lo, for TUN the same plus tunl0 and a relaxed
// rp_filter, for NAT nothing (or, if asked, a route back through a director). It records
// every change with the value it replaced, so that leaving puts the host back as it was.
// See DESIGN.md.
package realserver
