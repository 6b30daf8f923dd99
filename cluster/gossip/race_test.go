//go:build race

package gossip

// raceEnabled: the race detector slows memberlist's packet handling about tenfold.
const raceEnabled = true
