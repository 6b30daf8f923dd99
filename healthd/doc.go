// Package healthd checks real servers and turns the results into verdicts the Raft leader
// commits. It is a library: the director wires it.
//
//   - Checkers (NewChecker) probe one address once, within one total deadline.
//   - A Scheduler runs the checks Targets derives from the replicated state: spread over
//     their interval, one probe for identical checks, a bounded number at once, never two
//     runs of one probe at a time. Each real server's results go through a Tracker (rise,
//     fall, flap damping), and the director reports the verdicts as a View.
//   - The leader's Aggregate turns the directors' views and the agents' verdicts into the
//     transitions to commit (one fsm.SetHealths), by majority, with fail-open per service.
//
// DESIGN.md beside this file gives the reasons.
package healthd
