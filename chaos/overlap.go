package chaos

import (
	"math/bits"
	"time"
)

// Span is a stretch of the ARP watcher's rounds, and who answered in it.
type Span struct {
	From, To time.Duration
	Answers  uint16
}

func (s Span) Len() time.Duration { return s.To - s.From }

// mergeGap: two spans this close are one (an answer that came a little late, or got
// lost, does not end a double ownership).
const mergeGap = 3 * arpPeriod

// spans returns the maximal runs of rounds for which keep holds, each ending a period
// after its last round, merging runs less than mergeGap apart.
func spans(rs []Round, period time.Duration, keep func(Round) bool) []Span {
	var out []Span
	for _, r := range rs {
		if !keep(r) {
			continue
		}
		if n := len(out); n > 0 && r.At-out[n-1].To < mergeGap {
			out[n-1].To = r.At + period
			out[n-1].Answers |= r.Answers
			continue
		}
		out = append(out, Span{From: r.At, To: r.At + period, Answers: r.Answers})
	}
	return out
}

// DoubleOwners are the stretches in which two or more directors (or one and a stranger)
// answered ARP for the VIP.
func DoubleOwners(rs []Round) []Span {
	return spans(rs, arpPeriod, func(r Round) bool { return bits.OnesCount16(r.Answers)+r.Foreign >= 2 })
}

// Silences are the stretches in which nobody answered: the VIP was on no director.
func Silences(rs []Round) []Span {
	return spans(rs, arpPeriod, func(r Round) bool { return r.Answers == 0 && r.Foreign == 0 })
}

// longest is the longest span, and whether there is any.
func longest(ss []Span) (Span, bool) {
	var best Span
	for _, s := range ss {
		if s.Len() > best.Len() {
			best = s
		}
	}
	return best, len(ss) > 0
}
