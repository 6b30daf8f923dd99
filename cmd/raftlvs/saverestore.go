package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/dialect/ipvsadm"
	"github.com/raftlvs/raftlvs/fsm"
	"github.com/raftlvs/raftlvs/fsm/plan"
)

func newSaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "save",
		Short: "Print the services and real servers as `ipvsadm -Sn` does",
		Args:  exactArgs(0, "no arguments"),
		RunE: runE(func(cmd *cobra.Command, _ []string) error {
			st, err := clientFor(cmd).State(ctxOf(cmd))
			if err != nil {
				return fmt.Errorf("save: %w", err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			if err := ipvsadm.New(st.Services, st.RealServers).Write(w); err != nil {
				return fmt.Errorf("save: %w", err)
			}
			return w.Flush()
		}),
	}
}

func newRestoreCmd() *cobra.Command {
	var replace bool
	cmd := &cobra.Command{
		Use:   "restore [FILE|-]",
		Short: "Apply rules in `ipvsadm -Sn` format, all or nothing",
		Long: `Apply rules in the format of ipvsadm -Sn (ipvsadm-save -n), read from FILE or
standard input, as one atomic batch: a bad line rejects the whole input, with its line
number, and nothing is applied; a rule set too large for one batch is staged in chunks and
committed at once, all or nothing as well. --replace makes the cluster's table the input's, in the same
batch: services the input lacks are removed, the others changed in place, and what the
ipvsadm format cannot say (names, health checks, quorum and sorry servers, health verdicts,
drains) is kept for the services that stay.`,
		Args: rangeArgs(0, 1, "at most one FILE"),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			in := cmd.InOrStdin()
			src := "standard input"
			if len(args) == 1 && args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("restore: %w", err)
				}
				defer f.Close()
				in, src = f, args[0]
			}
			n, err := restore(cmd, in, replace)
			if err != nil {
				return fmt.Errorf("restore from %s: %w", src, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored %d commands from %s\n", n, src)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&replace, "replace", false, "make the table the input's: remove what it lacks, keep the checks of what stays")
	return cmd
}

func restore(cmd *cobra.Command, in io.Reader, replace bool) (int, error) {
	rules, err := ipvsadm.Parse(in)
	if err != nil {
		return 0, err
	}
	c := clientFor(cmd)
	// One batch is one log entry every director stores and applies: give the leader the
	// whole of its bound before giving up on the answer.
	c.Timeout = max(c.Timeout, api.BatchTimeout+10*time.Second)
	var cmds []fsm.Command
	if replace {
		// Read now, changed in the batch: a service changed meanwhile fails the batch
		// rather than anything half-done.
		st, err := c.State(ctxOf(cmd))
		if err != nil {
			return 0, err
		}
		changes := plan.Against(keepRaftlvsSettings(rules, st), st.Services, st.RealServers, plan.Options{Prune: true})
		cmds = changes.Commands()
		if len(cmds) == 0 {
			return 0, nil
		}
	} else {
		cmds = rules.Commands()
	}
	if len(cmds) == 0 {
		return 0, fmt.Errorf("no rules in the input: %w", fsm.ErrInvalid)
	}
	if len(cmds) > stagedChunk {
		return restoreStaged(cmd, c, cmds)
	}
	batch, err := batchOf(cmds)
	if err != nil {
		return 0, err
	}
	res, err := c.Batch(ctxOf(cmd), batch)
	if err != nil {
		return 0, err
	}
	return res.Applied, nil
}

// stagedChunk is the most commands a restore sends at once: far enough under the API's
// limits (MaxBatchCommands, MaxBatchBodyBytes) that a chunk of long names still fits.
const stagedChunk = 10_000

// chunksInFlight is how many chunks of a staged restore are sent at once.
const chunksInFlight = 4

// restoreStaged sends a restore too large for one batch as a staged transaction: its
// chunks a few at a time, each service with its real servers, then one commit that applies
// them all or none. A failure aborts the transaction, so nothing is applied.
func restoreStaged(cmd *cobra.Command, c *api.Client, cmds []fsm.Command) (int, error) {
	ctx := ctxOf(cmd)
	var id [6]byte
	if _, err := rand.Read(id[:]); err != nil {
		return 0, fmt.Errorf("transaction id: %w", err)
	}
	tx := "restore-" + hex.EncodeToString(id[:])
	chunks := fsm.SplitForStaging(cmds, stagedChunk)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, chunksInFlight)
	for seq, chunk := range chunks {
		batch, err := batchOf(chunk)
		if err != nil {
			return 0, err
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := stageChunk(ctx, c, tx, seq, batch); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stage chunk %d of %d: %w", seq+1, len(chunks), err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil {
		_, err = commitStaged(ctx, c, tx, len(chunks))
	}
	if err != nil {
		if aerr := c.AbortStaged(context.WithoutCancel(ctx), tx); aerr != nil && !errors.Is(aerr, fsm.ErrNotFound) {
			err = errors.Join(err, fmt.Errorf("abort staged restore %s (it expires by itself): %w", tx, aerr))
		}
		return 0, err
	}
	return len(cmds), nil // the commit applies every one, or none
}

// stageChunk sends one chunk. A chunk whose outcome is unknown (the leader changed while
// committing it) is sent again: staged already, it is refused as existing, which is what
// the first attempt did.
func stageChunk(ctx context.Context, c *api.Client, tx string, seq int, batch []api.BatchCommand) error {
	err := c.StageChunk(ctx, tx, seq, batch)
	for try := 0; try < 3 && errors.Is(err, api.ErrOutcomeUnknown); try++ {
		if err = c.StageChunk(ctx, tx, seq, batch); errors.Is(err, fsm.ErrExists) {
			return nil
		}
	}
	return err
}

// commitStaged commits. A commit whose outcome is unknown is known by the list of staged
// transactions: gone, it was committed (an abort is the client's); still there, it was
// not, and it is sent again.
func commitStaged(ctx context.Context, c *api.Client, tx string, chunks int) (*api.BatchResult, error) {
	res, err := c.CommitStaged(ctx, tx, chunks)
	for try := 0; try < 3 && errors.Is(err, api.ErrOutcomeUnknown); try++ {
		staged, lerr := c.Staged(ctx)
		if lerr != nil {
			return nil, errors.Join(err, lerr)
		}
		if !slices.ContainsFunc(staged, func(s api.StagedTx) bool { return s.ID == tx }) {
			return &api.BatchResult{}, nil
		}
		res, err = c.CommitStaged(ctx, tx, chunks)
	}
	return res, err
}

func batchOf(cmds []fsm.Command) ([]api.BatchCommand, error) {
	batch := make([]api.BatchCommand, 0, len(cmds))
	for _, fc := range cmds {
		bc, err := api.BatchCommandFor(fc)
		if err != nil {
			return nil, err
		}
		batch = append(batch, bc)
	}
	return batch, nil
}

// keepRaftlvsSettings is the rule set as the table a replace should leave, with what the
// ipvsadm format cannot say kept from the cluster: a service that stays keeps its name,
// health check and policies (on-down, quorum, sorry server, fail-open), a real server
// that stays its own check. Health verdicts and drains stay too (plan.Against).
func keepRaftlvsSettings(rules *ipvsadm.Rules, st *api.StateDump) plan.Table {
	type match struct {
		fwmark uint32
		family fsm.Family
		proto  fsm.Protocol
		vip    netip.AddrPort
	}
	matchOf := func(s *fsm.Service) match {
		if s.IsFWMark() {
			return match{fwmark: s.FWMark, family: s.Family}
		}
		return match{proto: s.Protocol, vip: netip.AddrPortFrom(s.VIP.Unmap(), s.Port)}
	}
	current := map[match]fsm.Service{}
	for _, s := range st.Services {
		current[matchOf(&s)] = s
	}
	checks := map[fsm.RSKey]*fsm.HealthCheck{}
	for _, rs := range st.RealServers {
		checks[rs.Key()] = rs.HealthCheck
	}
	t := plan.Table{RealServers: make([]fsm.RealServer, 0, len(rules.RealServers))}
	renamed := map[string]string{}
	for _, s := range rules.Services {
		if old, ok := current[matchOf(&s)]; ok {
			renamed[s.Name] = old.Name
			s.Name, s.HealthCheck, s.OnDown, s.FailOpenPercent = old.Name, old.HealthCheck, old.OnDown, old.FailOpenPercent
			s.Quorum, s.Hysteresis, s.SorryServer = old.Quorum, old.Hysteresis, old.SorryServer
		}
		t.Services = append(t.Services, s)
	}
	for _, rs := range rules.RealServers {
		if name, ok := renamed[rs.Service]; ok {
			rs.Service = name
		}
		rs.HealthCheck = checks[rs.Key()]
		t.RealServers = append(t.RealServers, rs)
	}
	return t
}
