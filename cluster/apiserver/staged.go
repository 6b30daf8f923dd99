package apiserver

import (
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
	var req api.StageRequest
	body, err := decodeRequest(r, api.MaxBatchBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var b fsm.Batch
	s.store.View(func(st *fsm.State) { b, err = api.BatchRequest(req).Batch(healthIn(st)) })
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.applyBatch(w, r, body, fsm.StageChunk{Tx: tx, Seq: seq, Commands: b.Commands}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// commitStaged: POST /v1/staged/{tx}/commit, every chunk applied at once, or none.
func (s *Server) commitStaged(w http.ResponseWriter, r *http.Request) {
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
	if s.applyBatch(w, r, body, fsm.CommitStaged{Tx: r.PathValue("tx"), Chunks: req.Chunks}) {
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

// healthIn gives a batch's edits the health the state records, so that they keep it.
func healthIn(st *fsm.State) api.HealthOf {
	return func(k fsm.RSKey) fsm.Health {
		rs, _ := st.RealServer(k)
		return rs.Health
	}
}
