package apiserver

import (
	"mime"
	"net/http"
	"strconv"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func (s *Server) stagedRoutes() {
	s.mux.HandleFunc("POST /v1/staged/{tx}/chunks/{seq}", s.stageChunk)
	s.mux.HandleFunc("POST /v1/staged/{tx}/commit", s.commitStaged)
	s.mux.HandleFunc("DELETE /v1/staged/{tx}", s.abortStaged)
	s.mux.HandleFunc("GET /v1/staged", s.servingOnly(s.listStaged))
}

// stageChunk: POST /v1/staged/{tx}/chunks/{seq}, one chunk of a large restore, kept aside.
func (s *Server) stageChunk(w http.ResponseWriter, r *http.Request) {
	tx := r.PathValue("tx")
	seq, err := strconv.Atoi(r.PathValue("seq"))
	if err != nil || seq < 0 || seq >= fsm.MaxStagedChunks {
		s.writeError(w, r, fieldErr("seq", fsm.ErrInvalid, "%q is not a chunk number 0..%d", r.PathValue("seq"), fsm.MaxStagedChunks-1))
		return
	}
	body, b, err := chunkOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.applyBatch(w, r, body, fsm.StageChunk{Tx: tx, Seq: seq, Commands: b.Commands}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// chunkOf reads a chunk's commands: a JSON StageRequest, or their binary encoding
// (api.CommandsContentType), which a restore's client sends.
func chunkOf(r *http.Request) ([]byte, fsm.Batch, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == api.CommandsContentType {
		body, err := readBytes(r, api.MaxBatchBodyBytes)
		if err != nil {
			return nil, fsm.Batch{}, err
		}
		b, err := api.DecodeCommands(body)
		return body, b, err
	}
	var req api.StageRequest
	body, err := decodeRequest(r, api.MaxBatchBodyBytes, &req)
	if err != nil {
		return nil, fsm.Batch{}, err
	}
	b, err := api.BatchRequest(req).Batch()
	return body, b, err
}

// commitStaged: POST /v1/staged/{tx}/commit, every chunk applied at once, or none. With
// ?dry_run=true the leader checks the commit and applies nothing; tx stays staged.
func (s *Server) commitStaged(w http.ResponseWriter, r *http.Request) {
	dryRun, err := dryRunOf(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req api.CommitRequest
	body, err := decodeRequest(r, api.MaxBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var commands int
	s.store.View(func(st *fsm.State) {
		for _, tx := range st.Staged() {
			if tx.ID == r.PathValue("tx") {
				commands = tx.Commands
			}
		}
	})
	commit := fsm.CommitStaged{Tx: r.PathValue("tx"), Chunks: req.Chunks}
	if dryRun {
		s.dryRun(w, r, body, commit, commands)
		return
	}
	if s.applyBatch(w, r, body, commit) {
		res := api.BatchResult{Applied: commands}
		s.store.View(func(st *fsm.State) { res.Version = st.Version() })
		writeJSON(w, http.StatusOK, res)
	}
}

// abortStaged: DELETE /v1/staged/{tx}.
func (s *Server) abortStaged(w http.ResponseWriter, r *http.Request) {
	if s.apply(w, r, nil, fsm.AbortStaged{Tx: r.PathValue("tx")}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) listStaged(w http.ResponseWriter, r *http.Request) {
	out := api.StagedList{Staged: []api.StagedTx{}}
	s.store.View(func(st *fsm.State) {
		for _, tx := range st.Staged() {
			out.Staged = append(out.Staged, api.StagedTx{ID: tx.ID, Chunks: tx.Chunks, Commands: tx.Commands, First: tx.First, Last: tx.Last})
		}
	})
	writeJSON(w, http.StatusOK, out)
}
