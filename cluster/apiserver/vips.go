package apiserver

import (
	"net/http"
	"net/netip"

	"github.com/raftlvs/raftlvs/api"
	"github.com/raftlvs/raftlvs/fsm"
)

func (s *Server) vipRoutes() {
	s.mux.HandleFunc("GET /v1/vips", s.servingOnly(s.listVIPs))
	s.mux.HandleFunc("POST /v1/vips", s.addVIP)
	s.mux.HandleFunc("DELETE /v1/vips/{addr}", s.removeVIP)
}

// vipInfos lists what the leader holds, with the services each VIP serves.
func vipInfos(st *fsm.State) []api.VIPInfo {
	services := map[netip.Addr][]string{}
	for _, svc := range st.Services() { // in listing order, so the names are too
		if svc.VIP.IsValid() {
			services[svc.VIP] = append(services[svc.VIP], svc.Name)
		}
	}
	held := st.HeldVIPs()
	out := make([]api.VIPInfo, len(held))
	for i, v := range held {
		_, declared := st.DeclaredVIP(v.Addr())
		out[i] = api.VIPInfo{VIP: v, Declared: declared, Services: services[v.Addr()]}
	}
	return out
}

func (s *Server) listVIPs(w http.ResponseWriter, r *http.Request) {
	var list api.VIPList
	s.store.View(func(st *fsm.State) { list.VIPs = vipInfos(st) })
	writeJSON(w, http.StatusOK, list)
}

// addVIP: POST /v1/vips {"addr":"10.0.0.100/24","interface":"eth0","name":"api"}.
func (s *Server) addVIP(w http.ResponseWriter, r *http.Request) {
	var req api.VIPRequest
	body, err := decodeRequest(r, api.MaxBodyBytes, &req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v, err := req.VIP()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.apply(w, r, body, fsm.AddVIP{VIP: v}) {
		return
	}
	var info api.VIPInfo
	s.store.View(func(st *fsm.State) {
		for _, vi := range vipInfos(st) {
			if vi.Addr() == v.Addr() {
				info = vi
			}
		}
	})
	writeJSON(w, http.StatusCreated, info)
}

// removeVIP: DELETE /v1/vips/{addr} forgets a declaration (a service's VIP goes with
// its service).
func (s *Server) removeVIP(w http.ResponseWriter, r *http.Request) {
	addr, err := netip.ParseAddr(r.PathValue("addr"))
	if err != nil {
		s.writeError(w, r, fieldErr("addr", fsm.ErrInvalid, "%q is not an address", r.PathValue("addr")))
		return
	}
	if s.apply(w, r, nil, fsm.RemoveVIP{Addr: addr.Unmap()}) {
		w.WriteHeader(http.StatusNoContent)
	}
}
