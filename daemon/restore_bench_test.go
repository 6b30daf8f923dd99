//go:build linux

package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
)

// restoreRules is the lab bench's rule file (deploy/lab/scenarios/bench.sh): services
// on 100 VIPs, each with servers NAT real servers.
func restoreRules(services, servers int) string {
	var b strings.Builder
	for i := range services {
		vip := fmt.Sprintf("10.100.3.%d:%d", i%100+1, i/100+1000)
		fmt.Fprintf(&b, "-A -t %s -s wrr\n", vip)
		for j := 1; j <= servers; j++ {
			fmt.Fprintf(&b, "-a -t %s -r 10.100.2.%d:%d -m -w 1\n", vip, j+100, i/100+1000)
		}
	}
	return b.String()
}

// BenchmarkWholeClusterRestore is the lab bench's programming row on the host: what
// `raftlvs restore` does with an ipvsadm file of services × 10 (parse, stage in chunks
// over the API, commit), timed until all three directors (daemon.New, Raft on loopback
// with bolt, in-memory IPVS; plain TCP, where the lab runs TLS) have written every rule.
// commit-ms is the restore's answer, all-ms the last director programmed.
func BenchmarkWholeClusterRestore(b *testing.B) {
	const services, servers = 10_000, 10
	rules := restoreRules(services, servers)
	var commit, all time.Duration
	b.StopTimer()
	for range b.N {
		dirs := startThree(b, []byte("0123456789abcdef0123456789abcdef"), nil)
		c := api.NewClient(dirs[0].d.APIAddr())
		c.Timeout = 10 * time.Minute
		b.StartTimer()
		t0 := time.Now()
		parsed, err := ipvsadm.Parse(strings.NewReader(rules))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Apply(context.Background(), parsed.Commands(), false); err != nil {
			b.Fatal(err)
		}
		commit += time.Since(t0)
		for _, d := range dirs {
			for deadline := time.Now().Add(5 * time.Minute); d.table.Ops().DestinationAdds < services*servers; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					b.Fatalf("%s programmed %d of the %d real servers in 5 minutes", d.id, d.table.Ops().DestinationAdds, services*servers)
				}
			}
		}
		all += time.Since(t0)
		b.StopTimer()
		for _, d := range dirs {
			d.stop()
		}
	}
	b.ReportMetric(float64(commit.Milliseconds())/float64(b.N), "commit-ms")
	b.ReportMetric(float64(all.Milliseconds())/float64(b.N), "all-ms")
}
