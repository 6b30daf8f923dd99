package apiserver

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) {
	var list api.ServiceList
	s.store.View(func(st *fsm.State) { list.Services = serviceInfos(st) })
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if info, ok := s.lookupService(name); ok {
		writeJSON(w, http.StatusOK, info)
		return
	}
	s.writeError(w, r, fieldErr("name", fsm.ErrNotFound, "no service %s", name))
}

func (s *Server) lookupService(name string) (api.ServiceInfo, bool) {
	var info api.ServiceInfo
	var ok bool
	s.store.View(func(st *fsm.State) {
		var svc fsm.Service
		if svc, ok = st.Service(name); ok {
			info = serviceInfo(st, svc)
		}
	})
	return info, ok
}

// answerService answers with the service as committed; status is 201 or 200.
func (s *Server) answerService(w http.ResponseWriter, r *http.Request, name string, status int) {
	info, ok := s.lookupService(name)
	if !ok {
		// Removed again between commit and this read: the write itself succeeded.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, status, info)
}

// addService: POST /v1/services with an fsm.Service; a missing name is derived from the match.
func (s *Server) addService(w http.ResponseWriter, r *http.Request) {
	var svc fsm.Service
	body, err := decodeRequest(r, api.MaxBodyBytes, &svc)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	norm := *svc.Clone()
	fsm.NormalizeService(&norm) // only to learn the name the state will give it
	if s.apply(w, r, body, fsm.AddService{Service: svc}) {
		s.answerService(w, r, norm.Name, http.StatusCreated)
	}
}

// editService: PUT /v1/services/{name} replaces every setting of the service (a field left
// out takes its default, as in POST). Real servers stay.
func (s *Server) editService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var svc fsm.Service
	body, err := decodeRequest(r, api.MaxBodyBytes, &svc)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if svc.Name != "" && svc.Name != name {
		s.writeError(w, r, fieldErr("name", fsm.ErrInvalid, "%q differs from the path's %q (services cannot be renamed)", svc.Name, name))
		return
	}
	svc.Name = name
	if s.apply(w, r, body, fsm.EditService{Service: svc}) {
		s.answerService(w, r, name, http.StatusOK)
	}
}

func (s *Server) removeService(w http.ResponseWriter, r *http.Request) {
	if s.apply(w, r, nil, fsm.RemoveService{Name: r.PathValue("name")}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// addRealServer: POST /v1/services/{name}/servers.
func (s *Server) addRealServer(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.RealServerRequest
	body, err := decodeRequest(r, api.MaxBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Service != "" && req.Service != name {
		s.writeError(w, r, fieldErr("service", fsm.ErrInvalid, "%q differs from the path's %q", req.Service, name))
		return
	}
	req.Service = name
	rs := req.RealServer()
	if s.apply(w, r, body, fsm.AddRealServer{RealServer: rs}) {
		s.answerRealServer(w, rs, http.StatusCreated)
	}
}

// editRealServer: PUT /v1/services/{name}/servers/{addr}/{port} replaces the real server's
// settings (same defaults as POST). Its origin and health verdict are kept.
func (s *Server) editRealServer(w http.ResponseWriter, r *http.Request) {
	key, err := pathKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req api.RealServerRequest
	body, err := decodeRequest(r, api.MaxBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case req.Service != "" && req.Service != key.Service:
		err = fieldErr("service", fsm.ErrInvalid, "%q differs from the path's %q", req.Service, key.Service)
	case req.Addr.IsValid() && req.Addr.Unmap() != key.Addr:
		err = fieldErr("addr", fsm.ErrInvalid, "%s differs from the path's %s (remove and add to move a real server)", req.Addr, key.Addr)
	case req.Port != 0 && req.Port != key.Port:
		err = fieldErr("port", fsm.ErrInvalid, "%d differs from the path's %d", req.Port, key.Port)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req.Service, req.Addr, req.Port = key.Service, key.Addr, key.Port
	rs := req.RealServer()
	rs.Origin = "" // fsm.State.Prepare keeps the existing origin
	s.store.View(func(st *fsm.State) {
		if old, ok := st.RealServer(key); ok {
			rs.Origin, rs.Health, rs.HealthReason, rs.HealthSince = old.Origin, old.Health, old.HealthReason, old.HealthSince
		}
	})
	if s.apply(w, r, body, fsm.EditRealServer{RealServer: rs}) {
		s.answerRealServer(w, rs, http.StatusOK)
	}
}

func (s *Server) removeRealServer(w http.ResponseWriter, r *http.Request) {
	key, err := pathKey(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.apply(w, r, nil, fsm.RemoveRealServer{Key: key}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// answerRealServer answers with the real server as committed, found under the key the
// state gave it (a missing port becomes the service's).
func (s *Server) answerRealServer(w http.ResponseWriter, rs fsm.RealServer, status int) {
	var got fsm.RealServer
	var ok bool
	s.store.View(func(st *fsm.State) {
		svc, found := st.Service(rs.Service)
		if !found {
			return
		}
		fsm.NormalizeRealServer(&rs, &svc)
		got, ok = st.RealServer(rs.Key())
	})
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, status, got)
}

// pathKey reads {name}/servers/{addr}/{port}. The address may be bracketed ([2001:db8::1]).
func pathKey(r *http.Request) (fsm.RSKey, error) {
	raw := strings.TrimSuffix(strings.TrimPrefix(r.PathValue("addr"), "["), "]")
	addr, err := netip.ParseAddr(raw)
	if err != nil {
		return fsm.RSKey{}, fieldErr("addr", fsm.ErrInvalid, "%q is not an IP address", r.PathValue("addr"))
	}
	port, err := strconv.ParseUint(r.PathValue("port"), 10, 16)
	if err != nil {
		return fsm.RSKey{}, fieldErr("port", fsm.ErrInvalid, "%q is not a port number (0..65535)", r.PathValue("port"))
	}
	return fsm.RSKey{Service: r.PathValue("name"), Addr: addr.Unmap(), Port: uint16(port)}, nil
}

// batch: POST /v1/batch, one atomic fsm.Batch.
func (s *Server) batch(w http.ResponseWriter, r *http.Request) {
	var req api.BatchRequest
	body, err := decodeRequest(r, api.MaxBatchBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var b fsm.Batch
	s.store.View(func(st *fsm.State) {
		b, err = req.Batch(healthIn(st))
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.applyBatch(w, r, body, b) {
		res := api.BatchResult{Applied: len(b.Commands)}
		s.store.View(func(st *fsm.State) { res.Version = st.Version() })
		writeJSON(w, http.StatusOK, res)
	}
}
