// Package pki is raftlvs's trust: the cluster CA, certificates that carry a role
// (director, agent, operator) and a node id, join tokens, tls.Configs that check roles,
// and certificate reload. It does not import hashicorp/raft: the agent links it. See
// DESIGN.md.
package pki
