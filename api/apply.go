package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
)

// StagedChunk is the most commands Apply sends at once: far enough under the API's
// limits (MaxBatchCommands, MaxBatchBodyBytes) that a chunk of long names still fits.
const StagedChunk = 10_000

// chunksInFlight is how many chunks of a staged change are sent at once.
const chunksInFlight = 4

// abortTimeout bounds the abort of a staged change that failed: one the cluster did not
// hear expires by itself (fsm.StagedTTL).
const abortTimeout = 15 * time.Second

// Apply makes operator commands (services and real servers added, edited, removed) one
// change of the cluster, all or nothing, whatever their number: one batch when they fit
// in StagedChunk, else a staged transaction (its chunks a few at a time, each service
// with its real servers, then one commit). With dryRun the leader checks the change as it
// would apply it, and applies nothing: a staged one is staged, its commit checked, then
// aborted. A failure aborts what was staged, so nothing is applied.
func (c *Client) Apply(ctx context.Context, cmds []fsm.Command, dryRun bool) (*BatchResult, error) {
	if len(cmds) <= StagedChunk {
		batch, err := batchOf(cmds)
		if err != nil {
			return nil, err
		}
		if dryRun {
			return c.CheckBatch(ctx, batch)
		}
		return c.Batch(ctx, batch)
	}
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("transaction id: %w", err)
	}
	tx := "apply-" + hex.EncodeToString(id[:])
	// Refused before anything is staged (the leader checks each chunk in full).
	for i, fc := range cmds {
		if !fsm.IsOperatorCommand(fc) {
			return nil, fieldErr(fmt.Sprintf("commands[%d]", i), fsm.ErrInvalid, "%T is not an operator batch command", fc)
		}
	}
	chunks := fsm.SplitForStaging(cmds, StagedChunk)
	var (
		mu     sync.Mutex
		errs   []error
		wg     sync.WaitGroup
		staged atomic.Int32
	)
	// The first chunk that fails stops the others: each would otherwise wait out its own
	// timeout (a restore to a cluster that went away took 11 chunks × 130 s).
	stageCtx, stop := context.WithCancel(ctx)
	defer stop()
	sem := make(chan struct{}, chunksInFlight)
	for seq, chunk := range chunks {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if stageCtx.Err() != nil {
				return
			}
			err := c.stageOnce(stageCtx, tx, seq, chunk)
			if err == nil {
				staged.Add(1)
				return
			}
			if errors.Is(err, context.Canceled) && ctx.Err() == nil {
				return // stopped by another chunk's failure, which is the one to report
			}
			stop()
			mu.Lock()
			errs = append(errs, fmt.Errorf("stage chunk %d of %d: %w", seq+1, len(chunks), err))
			mu.Unlock()
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	if n := int(staged.Load()); err == nil && n < len(chunks) {
		// Chunks never sent (the caller gave up first): not a commit of unknown outcome.
		err = fmt.Errorf("staged %d of %d chunks: %w", n, len(chunks), context.Cause(ctx))
	}
	var res *BatchResult
	if err == nil {
		if dryRun {
			res, err = c.CheckStaged(ctx, tx, len(chunks))
		} else {
			res, err = c.commitOnce(ctx, tx, len(chunks))
		}
	}
	if err != nil || dryRun {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := c.AbortStaged(actx, tx); aerr != nil && !errors.Is(aerr, fsm.ErrNotFound) {
			err = errors.Join(err, fmt.Errorf("abort staged change %s (it expires by itself): %w", tx, aerr))
		}
	}
	if err != nil {
		return nil, err
	}
	if !dryRun {
		res.Applied = len(cmds) // the commit applies every one, or none
	}
	return res, nil
}

// stageOnce sends one chunk. A chunk whose outcome is unknown (the leader changed while
// committing it) is sent again: staged already, it is refused as existing, which is what
// the first attempt did.
func (c *Client) stageOnce(ctx context.Context, tx string, seq int, chunk []fsm.Command) error {
	err := c.StageChunk(ctx, tx, seq, chunk)
	for try := 0; try < 3 && errors.Is(err, ErrOutcomeUnknown); try++ {
		if err = c.StageChunk(ctx, tx, seq, chunk); errors.Is(err, fsm.ErrExists) {
			return nil
		}
	}
	return err
}

// commitOnce commits. A commit whose outcome is unknown is known by the list of staged
// transactions, read consistently (a lagging follower would still list it): gone, it
// was committed (an abort is the client's); still there, it was not, and it is sent
// again.
func (c *Client) commitOnce(ctx context.Context, tx string, chunks int) (*BatchResult, error) {
	res, err := c.CommitStaged(ctx, tx, chunks)
	for try := 0; try < 3 && errors.Is(err, ErrOutcomeUnknown); try++ {
		staged, lerr := c.Staged(consistent(ctx))
		if lerr != nil {
			return nil, errors.Join(err, lerr)
		}
		if !slices.ContainsFunc(staged, func(s StagedTx) bool { return s.ID == tx }) {
			return &BatchResult{}, nil
		}
		res, err = c.CommitStaged(ctx, tx, chunks)
	}
	return res, err
}

func batchOf(cmds []fsm.Command) ([]BatchCommand, error) {
	batch := make([]BatchCommand, 0, len(cmds))
	for _, fc := range cmds {
		bc, err := BatchCommandFor(fc)
		if err != nil {
			return nil, err
		}
		batch = append(batch, bc)
	}
	return batch, nil
}
