//go:build linux

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

// opTimeout bounds one operation, the client's retries included: long enough to ride
// out an election, short enough that a client stuck on a frozen director moves on.
const opTimeout = 6 * time.Second

// Workload is the clients: each picks an operation and a director at random (seeded),
// and records every operation in the history.
type Workload struct {
	c       *Cluster
	keys    int
	clients int
	pace    time.Duration // pause between one client's operations
	seed    uint64

	values []atomic.Int64 // per key, the last value handed to a write
	adds   atomic.Int64

	mu      sync.Mutex
	history []Op
}

// NewWorkload prepares clients over keys registers.
func NewWorkload(c *Cluster, seed uint64, clients, keys int, pace time.Duration) *Workload {
	return &Workload{c: c, keys: keys, clients: clients, pace: pace, seed: seed, values: make([]atomic.Int64, keys)}
}

// Setup creates the two services and the registers (weight 0, the model's initial
// value) and declares the VIP, through the API, retrying while the cluster settles.
func (w *Workload) Setup(ctx context.Context) error {
	cl := w.c.Client(opTimeout, w.c.IDs...)
	steps := []func() error{
		func() error { _, err := cl.AddVIP(ctx, api.VIPRequest{Addr: VIP.String(), Name: "chaos"}); return err },
		func() error {
			_, err := cl.AddService(ctx, fsm.Service{Name: regService, FWMark: 1, Family: fsm.IPv4})
			return err
		},
		func() error {
			_, err := cl.AddService(ctx, fsm.Service{Name: ledgerService, FWMark: 2, Family: fsm.IPv4})
			return err
		},
	}
	for k := range w.keys {
		steps = append(steps, func() error {
			zero := 0
			_, err := cl.AddRealServer(ctx, regService, api.RealServerRequest{Addr: regAddr(k), Weight: &zero})
			return err
		})
	}
	for i, step := range steps {
		var err error
		for try := 0; try < 5; try++ {
			if err = step(); err == nil || errors.Is(err, fsm.ErrExists) {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil && !errors.Is(err, fsm.ErrExists) {
			return fmt.Errorf("set up the cluster (step %d): %w", i, err)
		}
	}
	return nil
}

// Run runs the clients until ctx ends; every operation has returned when it does.
func (w *Workload) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range w.clients {
		wg.Go(func() { w.client(ctx, i) })
	}
	wg.Wait()
}

func (w *Workload) client(ctx context.Context, id int) {
	rng := rand.New(rand.NewPCG(w.seed, uint64(id)+1))
	cl := w.c.Client(opTimeout, w.c.IDs...)
	cl.Consistent = true
	for ctx.Err() == nil {
		// A random director first, then the others: the client moves on only when one
		// could not take the request.
		order := slices.Clone(w.c.IDs)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		cl.Addrs = cl.Addrs[:0]
		for _, d := range order {
			cl.Addrs = append(cl.Addrs, w.c.apiAddr(d))
		}
		op := Op{Client: id, Via: order[0]}
		switch p := rng.Float64(); {
		case p < 0.45:
			op.Kind, op.Key = Write, rng.IntN(w.keys)
			op.Value = int(w.values[op.Key].Add(1)) % (fsm.MaxWeight + 1)
		case p < 0.9:
			op.Kind = Read
		default:
			op.Kind, op.Entry = Add, int(w.adds.Add(1))
		}
		w.do(cl, &op)
		w.mu.Lock()
		w.history = append(w.history, op)
		w.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(w.pace):
		}
	}
}

// do runs one operation. It does not take the run's ctx: an operation is never cut
// short by the end of the run, which would only make its outcome unknown.
func (w *Workload) do(cl *api.Client, op *Op) {
	ctx := context.Background()
	op.Call = w.c.since()
	var err error
	switch op.Kind {
	case Write:
		v := op.Value
		_, err = cl.EditRealServer(ctx, regService, regAddr(op.Key), 0, api.RealServerRequest{Addr: regAddr(op.Key), Weight: &v})
	case Read:
		var svc *api.ServiceInfo
		if svc, err = cl.Service(ctx, regService); err == nil {
			op.Values = registers(svc.RealServers, w.keys)
		}
	case Add:
		_, err = cl.AddRealServer(ctx, ledgerService, api.RealServerRequest{Addr: ledgerAddr(op.Entry)})
	}
	op.Return = w.c.since()
	op.Outcome = classify(op.Kind != Read, err)
	if op.Kind == Add && errors.Is(err, fsm.ErrExists) {
		op.Outcome, op.Exists = OK, true
	}
	if err != nil {
		op.Err = err.Error()
	}
}

// registers reads every key's weight from the register service's real servers.
func registers(rss []fsm.RealServer, keys int) []int {
	out := make([]int, keys)
	for k := range out {
		out[k] = -1
		for _, rs := range rss {
			if rs.Addr == regAddr(k) {
				out[k] = rs.Weight
			}
		}
	}
	return out
}

// History is every operation so far, in the order they returned.
func (w *Workload) History() []Op {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.history)
}
