package daemon

import (
	"time"

	"github.com/raftlvs/raftlvs/cluster/gossip"
)

// eligibilityAnnounceTimeout bounds the wait for a new verdict's gossip broadcast.
const eligibilityAnnounceTimeout = 2 * time.Second

// gossipMeta is what this director announces in the pool.
func (d *Director) gossipMeta(eligible bool) gossip.Meta {
	return gossip.Meta{Role: gossip.RoleDirector, ID: d.opts.ID, APIAddr: d.APIAddr(), Ineligible: !eligible}
}

// announceEligibility tells the pool whether this director's tracked checks pass. The
// other directors read it when they pick a transfer target (eligible); gossip, not the
// replicated state, because it needs no leader (a check that fails during an election
// still counts) and a flapping check does not fill the log.
func (d *Director) announceEligibility(passing bool, _ string) {
	if err := d.pool.UpdateMeta(d.gossipMeta(passing), eligibilityAnnounceTimeout); err != nil {
		d.log.Warn("announce eligibility in the gossip pool", "eligible", passing, "err", err)
	}
}

// eligible says whether the director id may be handed leadership by a planned transfer:
// not if it announces failing tracked checks. A director the pool does not see is
// eligible: raft itself fails a transfer to one it cannot reach.
func (d *Director) eligible(id string) bool {
	for _, m := range d.pool.Members() {
		if m.Name == id && m.MetaErr == nil && m.Meta.Role == gossip.RoleDirector {
			return !m.Meta.Ineligible
		}
	}
	return true
}
