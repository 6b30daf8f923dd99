package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/raftlvs/raftlvs/fsm"
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

// CommandsContentType marks a chunk whose body is the commands as the log's binary
// encoding of an fsm.Batch (fsm/wire.go) instead of a JSON StageRequest: the leader of a
// large restore spent a third of its time decoding the JSON of its chunks.
const CommandsContentType = "application/vnd.raftlvs.commands"

// StageChunk sends chunk seq of transaction tx, operator commands only, in the binary
// encoding. A director of a release before it answers that the body must be JSON: it is
// sent again as JSON. The leader checks either as an operator's batch.
func (c *Client) StageChunk(ctx context.Context, tx string, seq int, cmds []fsm.Command) error {
	path := stagedPath(tx) + "/chunks/" + strconv.Itoa(seq)
	body, err := fsm.Encode(fsm.Batch{Commands: cmds})
	if err != nil {
		return err
	}
	err = c.do(ctx, http.MethodPost, path, rawBody{contentType: CommandsContentType, data: body}, nil)
	if apiErr := (*Error)(nil); errors.As(err, &apiErr) && apiErr.Field == "body" && errors.Is(err, fsm.ErrInvalid) {
		batch, err := batchOf(cmds)
		if err != nil {
			return err
		}
		return c.do(ctx, http.MethodPost, path, StageRequest{Commands: batch}, nil)
	}
	return err
}

// DecodeCommands reads a CommandsContentType body as the operator's batch it encodes,
// with the checks and field names of its JSON form: each command goes through
// BatchCommand, so only the operator's commands, with what an operator may set, pass.
func DecodeCommands(body []byte) (fsm.Batch, error) {
	c, err := fsm.Decode(body)
	if err != nil {
		return fsm.Batch{}, fieldErr("body", fsm.ErrInvalid, "not a binary batch of commands: %v", err)
	}
	b, ok := c.(fsm.Batch)
	switch {
	case !ok:
		return fsm.Batch{}, fieldErr("body", fsm.ErrInvalid, "holds a %T, not a batch of commands", c)
	case len(b.Commands) > MaxBatchCommands: // before converting them all
		return fsm.Batch{}, fieldErr("commands", fsm.ErrInvalid, "%d commands exceed the limit of %d", len(b.Commands), MaxBatchCommands)
	}
	req := BatchRequest{Commands: make([]BatchCommand, len(b.Commands))}
	for i, sub := range b.Commands {
		if req.Commands[i], err = BatchCommandFor(sub); err != nil {
			return fsm.Batch{}, fieldErr(fmt.Sprintf("commands[%d]", i), fsm.ErrInvalid, "%v", err)
		}
	}
	return req.Batch()
}

// rawBody is a request body sent as it is, not as JSON.
type rawBody struct {
	contentType string
	data        []byte
}

// CommitStaged applies chunks 0..chunks-1 of tx, all or nothing.
func (c *Client) CommitStaged(ctx context.Context, tx string, chunks int) (*BatchResult, error) {
	return call[BatchResult](ctx, c, http.MethodPost, stagedPath(tx)+"/commit", CommitRequest{Chunks: chunks})
}

// CheckStaged has the leader check the commit of tx as CommitStaged would apply it, and
// apply nothing: tx stays staged.
func (c *Client) CheckStaged(ctx context.Context, tx string, chunks int) (*BatchResult, error) {
	return call[BatchResult](ctx, c, http.MethodPost, stagedPath(tx)+"/commit?dry_run=true", CommitRequest{Chunks: chunks})
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
