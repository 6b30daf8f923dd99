package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/raftlvs/raftlvs/cluster"
	"github.com/raftlvs/raftlvs/cluster/gossip"
	"github.com/raftlvs/raftlvs/director"
	"github.com/raftlvs/raftlvs/director/registrar"
)

// registrarDuty registers agents while this director leads. Each term gets a fresh
// Registrar: its drain and reap timers must start anew with the leadership, never carry
// over from an earlier term of this node.
type registrarDuty struct {
	cfg  registrar.Config
	node *cluster.Node
}

func newRegistrar(cfg *directorConfig, pool *gossip.Pool, node *cluster.Node, dir *director.Director, log *slog.Logger) *registrarDuty {
	return &registrarDuty{cfg: registrar.Config{
		Members:   pool,
		State:     node,
		Writer:    node,
		Conns:     dir,
		MaxDrain:  time.Duration(cfg.DrainMax),
		ReapDelay: time.Duration(cfg.ReapDelay),
		Logger:    log,
	}, node: node}
}

func (d *registrarDuty) Run(ctx context.Context) error {
	changes, cancel := d.node.Watch()
	defer cancel()
	cfg := d.cfg
	cfg.StateChanges = changes
	r, err := registrar.New(cfg)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}
