package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/fsm"
)

// gossipRecheck is how often a director looks for directors its pool has lost, besides on
// every state change.
const gossipRecheck = 5 * time.Second

// poolView is the gossip pool as keepDirectorsInGossip needs it (*gossip.Pool).
type poolView interface {
	Members() []gossip.Member
	Join(addrs []string) (int, error)
}

// stateView is the replicated state as keepDirectorsInGossip needs it (*cluster.Node).
type stateView interface {
	ID() string
	View(func(*fsm.State))
	Watch() (<-chan struct{}, func())
}

// keepDirectorsInGossip keeps this director in gossip contact with the directors the
// state lists: at start, on every state change and every few seconds, it joins those the
// pool does not see alive.
func keepDirectorsInGossip(ctx context.Context, pool poolView, node stateView, log *slog.Logger) {
	changes, cancel := node.Watch()
	defer cancel()
	tick := time.NewTicker(gossipRecheck)
	defer tick.Stop()
	for {
		if missing := missingDirectors(pool, node); len(missing) > 0 {
			if _, err := pool.Join(missing); err != nil {
				log.Debug("gossip join of directors", "addrs", missing, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
	}
}

// missingDirectors lists the gossip addresses of the directors the state has and the
// pool does not see alive, this one aside.
func missingDirectors(pool poolView, node stateView) []string {
	alive := map[string]bool{}
	for _, m := range pool.Members() {
		alive[m.Name] = m.State == gossip.StateAlive
	}
	var missing []string
	node.View(func(st *fsm.State) {
		for _, d := range st.Directors() {
			if d.ID != node.ID() && d.GossipAddr != "" && !alive[d.ID] {
				missing = append(missing, d.GossipAddr)
			}
		}
	})
	return missing
}
