// Package keepalived imports keepalived.conf (keepalived 2.x): it parses the file and its
// includes with keepalived's preprocessor rules (conditionals, parameters, generators) into
// a tree of statements with their places, and translates the load-balancing part — virtual
// servers, groups, real servers, checkers — into a Plan: the fsm commands that create the
// same IPVS table in raftlvs, and a report of every setting left out or carried over
// differently. Translation is pure; only Parse reads files, through an fs.FS.
//
// See DESIGN.md for what is supported, what is not, and where raftlvs departs from
// keepalived.
package keepalived
