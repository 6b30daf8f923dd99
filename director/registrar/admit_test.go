package registrar

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// TestAnAgentRegistersOnlyTheAddressesItIsAdmittedFor: the gossip key is shared, so a
// node that holds it but no agent certificate must not become a real server, and an
// agent whose certificate was revoked must drop out.
func TestAnAgentRegistersOnlyTheAddressesItIsAdmittedFor(t *testing.T) {
	certified := map[string]netip.Addr{"a1": addrOf(1)}
	h := newHarness(t, func(c *Config) {
		c.Admit = func(id string, addr netip.Addr) error {
			if certified[id] == addr {
				return nil
			}
			return fmt.Errorf("agent %s is not certified for %s", id, addr)
		}
	})
	h.pool.set(
		agent("a1", 1, sp("web", 8080, 100)),
		agent("rogue", 9, sp("web", 8080, 100)), // the gossip key, no certificate
		agent("a2", 2, sp("web", 8080, 100)),    // certified for nothing
	)
	h.reconcile()
	h.expect("web", 1, 8080, agentRS("a1", 1, "web", 8080, 100, fsm.Active))
	h.expect("web", 9, 8080, nil)
	h.expect("web", 2, 8080, nil)
	if !strings.Contains(h.logs.String(), "rogue is not certified") {
		t.Errorf("the refusal was not logged:\n%s", h.logs)
	}

	// a1 claims another agent's address: refused, and its own real server retires.
	h.pool.set(agent("a1", 2, sp("web", 8080, 100)))
	h.reconcile()
	h.expect("web", 2, 8080, nil)
	h.clock.advance(reapDelay + time.Second)
	h.reconcile()
	h.expect("web", 1, 8080, nil)
}
