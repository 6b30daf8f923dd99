package fsm

// An entry is applied to the state itself, not to a copy: each change made on the way is
// recorded with what it replaced, so that a command failing halfway (command 9,000 of a
// restore) is undone exactly, in reverse order, and a command that succeeds leaves the
// list of what it touched for the journal. A batch costs what it touches, not the size of
// the state.
//
// Services, real servers and staged transactions are never changed in place once in the
// state: a change puts a new value under the key. What was replaced is then still intact
// for an undo, and a Frozen snapshot can keep pointers to them while the state moves on.

type undoKind uint8

const (
	undoService   undoKind = iota + 1 // services[key.Service] was old (*Service, nil: absent)
	undoServers                       // servers[key.Service] was old (the whole map, nil: absent)
	undoServer                        // servers[key.Service][key] was old (*RealServer, nil: absent)
	undoDirector                      // directors[key.Service] was old (Director, nil: absent)
	undoClusterID                     // clusterID was old (string)
	undoStaged                        // staged[key.Service] was old (*stagedTx, nil: absent)
	undoTrust                         // trust was old (trustState: small, copied whole)
	undoVIP                           // vips[key.Addr] was old (VIP, nil: absent)
)

type undoEntry struct {
	kind undoKind
	key  RSKey // the real server, or in Service alone the service, director or transaction
	old  any
}

// undoRetain is the largest undo list kept allocated between entries; a restore's is
// dropped.
const undoRetain = 4096

func (s *State) remember(kind undoKind, key RSKey, old any) {
	s.undo = append(s.undo, undoEntry{kind: kind, key: key, old: old})
}

// rollback undoes every change recorded after mark, newest first.
func (s *State) rollback(mark int) {
	for i := len(s.undo) - 1; i >= mark; i-- {
		e := s.undo[i]
		name := e.key.Service
		switch e.kind {
		case undoService:
			if old, _ := e.old.(*Service); old != nil {
				putService(s, old)
			} else {
				deleteService(s, name)
			}
		case undoServers:
			if old, _ := e.old.(map[RSKey]*RealServer); old != nil {
				s.servers[name] = old
			} else {
				delete(s.servers, name)
			}
		case undoServer:
			if old, _ := e.old.(*RealServer); old != nil {
				putServer(s, old)
			} else {
				deleteServer(s, e.key)
			}
		case undoDirector:
			if old, ok := e.old.(Director); ok {
				s.directors[name] = old
			} else {
				delete(s.directors, name)
			}
		case undoClusterID:
			s.clusterID = e.old.(string)
		case undoStaged:
			old, _ := e.old.(*stagedTx)
			putStaged(s, name, old)
		case undoTrust:
			s.trust = e.old.(trustState)
		case undoVIP:
			s.undoVIP(e)
		}
	}
	s.forget(mark)
}

// commit journals what the entry that brought the state to its current version touched
// and forgets the undo list.
func (s *State) commit() {
	changes := make([]Change, 0, min(len(s.undo), JournalSize+1))
	for _, e := range s.undo {
		if len(changes) > JournalSize {
			break // the journal starts over: which ones no longer matters
		}
		switch e.kind {
		case undoService, undoServers:
			changes = append(changes, Change{Service: e.key.Service})
		case undoServer:
			changes = append(changes, Change{Service: e.key.Service, Server: e.key})
		}
	}
	if len(changes) > 0 {
		s.journal.record(s.version, changes)
	}
	s.forget(0)
}

func (s *State) forget(mark int) {
	clear(s.undo[mark:]) // drop the references to replaced values
	s.undo = s.undo[:mark]
	if mark == 0 && cap(s.undo) > undoRetain {
		s.undo = nil
	}
}

// The recorded changes. Commands change the state only through these.

// setService adds or replaces a service. Its quorum verdict is the state's, never the
// command's: carried over from the service it replaces, then brought up to date.
func (s *State) setService(svc *Service) {
	old := s.services[svc.Name]
	svc.QuorumDown = old != nil && old.QuorumDown
	s.remember(undoService, RSKey{Service: svc.Name}, old)
	putService(s, svc)
	s.refreshQuorum(svc.Name)
}

// refreshQuorum decides again whether a service has lost its quorum, with keepalived's
// hysteresis: it is lost when the in-rotation weight falls below Quorum-Hysteresis and
// back at Quorum+Hysteresis. That depends on the past, so it is part of the state: every
// director applies the same log and reaches the same answer, where a director's own
// memory would not after a restart. A change is a new value, as every change is.
func (s *State) refreshQuorum(name string) {
	svc, ok := s.services[name]
	if !ok {
		return
	}
	down := false
	if svc.Quorum > 0 {
		sum := 0
		for _, rs := range s.servers[name] {
			if rs.InRotation() {
				sum += rs.Weight
			}
		}
		switch down = svc.QuorumDown; {
		case !down && sum < svc.Quorum-svc.Hysteresis:
			down = true
		case down && sum >= svc.Quorum+svc.Hysteresis:
			down = false
		}
	}
	if down == svc.QuorumDown {
		return
	}
	next := *svc
	next.QuorumDown = down
	s.remember(undoService, RSKey{Service: name}, svc)
	putService(s, &next)
}

// changeTrust records the trust records as they are before a command changes them.
func (s *State) changeTrust() { s.remember(undoTrust, RSKey{}, s.trust.clone()) }

// dropService removes a service and its real servers.
func (s *State) dropService(name string) {
	s.remember(undoService, RSKey{Service: name}, s.services[name])
	deleteService(s, name)
	if servers, ok := s.servers[name]; ok {
		s.remember(undoServers, RSKey{Service: name}, servers)
		delete(s.servers, name)
	}
}

func (s *State) setServer(rs *RealServer) {
	k := rs.Key()
	s.remember(undoServer, k, s.servers[k.Service][k])
	putServer(s, rs)
	s.refreshQuorum(k.Service)
}

func (s *State) dropServer(k RSKey) {
	s.remember(undoServer, k, s.servers[k.Service][k])
	deleteServer(s, k)
	s.refreshQuorum(k.Service)
}

func (s *State) setDirector(d Director) {
	s.rememberDirector(d.ID)
	s.directors[d.ID] = d
}

func (s *State) dropDirector(id string) {
	s.rememberDirector(id)
	delete(s.directors, id)
}

func (s *State) rememberDirector(id string) {
	var old any
	if d, ok := s.directors[id]; ok {
		old = d
	}
	s.remember(undoDirector, RSKey{Service: id}, old)
}

func (s *State) setClusterID(id string) {
	s.remember(undoClusterID, RSKey{}, s.clusterID)
	s.clusterID = id
}

// setStaged replaces (nil: removes) a staged transaction.
func (s *State) setStaged(id string, tx *stagedTx) {
	s.remember(undoStaged, RSKey{Service: id}, s.staged[id])
	putStaged(s, id, tx)
}
