// Package api is the contract of the directors' HTTP API (JSON under /v1): its wire types,
// the meaning of its requests in fsm commands, its error codes, and a Go client that finds
// a director that can answer. It imports only fsm and the standard library, so the CLI and
// the real-server agent link neither Raft nor bolt. The server is cluster/apiserver.
package api
