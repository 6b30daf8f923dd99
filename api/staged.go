package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// A restore too large for one batch (MaxBatchCommands) is staged: its chunks go to the
// leader one by one, kept aside unapplied, then one small commit applies them all or
// none (fsm.StageChunk, CommitStaged, AbortStaged).

// StageRequest is the body of POST /v1/staged/{tx}/chunks/{seq}: one chunk of operator
// commands, at most MaxBatchCommands, each service with its real servers.
type StageRequest struct {
	Commands []BatchCommand `json:"commands"`
}

// CommitRequest is the body of POST /v1/staged/{tx}/commit: how many chunks (0..n-1)
// the transaction has, so that a chunk that never arrived fails the commit.
type CommitRequest struct {
	Chunks int `json:"chunks"`
}

// StagedTx is an open staged transaction (GET /v1/staged).
type StagedTx struct {
	ID       string    `json:"id"`
	Chunks   []int     `json:"chunks"`
	Commands int       `json:"commands"`
	First    time.Time `json:"first,omitzero"`
	Last     time.Time `json:"last,omitzero"`
}

// StagedList is the answer of GET /v1/staged.
type StagedList struct {
	Staged []StagedTx `json:"staged"`
}

func stagedPath(tx string) string { return "/v1/staged/" + url.PathEscape(tx) }

// StageChunk sends chunk seq of transaction tx.
func (c *Client) StageChunk(ctx context.Context, tx string, seq int, cmds []BatchCommand) error {
	return c.do(ctx, http.MethodPost, stagedPath(tx)+"/chunks/"+strconv.Itoa(seq), StageRequest{Commands: cmds}, nil)
}

// CommitStaged applies chunks 0..chunks-1 of tx, all or nothing.
func (c *Client) CommitStaged(ctx context.Context, tx string, chunks int) (*BatchResult, error) {
	return call[BatchResult](ctx, c, http.MethodPost, stagedPath(tx)+"/commit", CommitRequest{Chunks: chunks})
}

// AbortStaged forgets tx and its chunks.
func (c *Client) AbortStaged(ctx context.Context, tx string) error {
	return c.do(ctx, http.MethodDelete, stagedPath(tx), nil, nil)
}

// Staged lists the open staged transactions.
func (c *Client) Staged(ctx context.Context) ([]StagedTx, error) {
	out, err := call[StagedList](ctx, c, http.MethodGet, "/v1/staged", nil)
	if err != nil {
		return nil, err
	}
	return out.Staged, nil
}
