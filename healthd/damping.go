package healthd

import (
	"fmt"
	"math"
	"time"
)

// Damping is BGP-style route-flap damping for real servers (RFC 2439): every down
// transition adds Penalty; the penalty halves every HalfLife; a server whose penalty rises
// above Suppress is held down until it decays below Reuse, however its checks go. The
// penalty never exceeds what decays to Reuse in MaxHold, so a hold ends at most MaxHold
// after the last flap.
//
// With the defaults, a server that goes down at most once a minute is never held (the
// penalty tends to 2 × 1000 and never passes 2000); one that goes down three times in 20 s
// is held for about two minutes after the last one.
type Damping struct {
	Off      bool          // no damping: rise and fall alone decide
	Penalty  float64       // added per down transition; default 1000
	Suppress float64       // hold above this; default 2000
	Reuse    float64       // release below this; default 750
	HalfLife time.Duration // default 60 s
	MaxHold  time.Duration // default 4 half-lives
}

// DefaultDamping is what a zero Damping means.
var DefaultDamping = Damping{Penalty: 1000, Suppress: 2000, Reuse: 750, HalfLife: time.Minute, MaxHold: 4 * time.Minute}

func (d Damping) withDefaults() Damping {
	def := DefaultDamping
	if d.Penalty == 0 {
		d.Penalty = def.Penalty
	}
	if d.Suppress == 0 {
		d.Suppress = def.Suppress
	}
	if d.Reuse == 0 {
		d.Reuse = def.Reuse
	}
	if d.HalfLife == 0 {
		d.HalfLife = def.HalfLife
	}
	if d.MaxHold == 0 {
		d.MaxHold = 4 * d.HalfLife
	}
	return d
}

// Validate reports a damping that could never release or never hold.
func (d Damping) Validate() error {
	if d.Off {
		return nil
	}
	d = d.withDefaults()
	switch {
	case d.Penalty < 0 || d.Suppress < 0 || d.Reuse < 0 || d.HalfLife < 0 || d.MaxHold < 0:
		return fmt.Errorf("damping: values must not be negative: %w", ErrBadConfig)
	case d.Reuse >= d.Suppress:
		return fmt.Errorf("damping: reuse %v must be below suppress %v: %w", d.Reuse, d.Suppress, ErrBadConfig)
	case d.ceiling() <= d.Suppress:
		return fmt.Errorf("damping: max hold %v is too short to ever reach suppress %v: %w", d.MaxHold, d.Suppress, ErrBadConfig)
	}
	return nil
}

// ceiling is the largest penalty: the one that decays to Reuse in MaxHold.
func (d Damping) ceiling() float64 {
	return d.Reuse * math.Exp2(float64(d.MaxHold)/float64(d.HalfLife))
}

// penalty is a decaying flap penalty: value as of at.
type penalty struct {
	value float64
	at    time.Time
}

func (p penalty) now(d Damping, now time.Time) float64 {
	if p.value == 0 || !now.After(p.at) {
		return p.value
	}
	return p.value * math.Exp2(-float64(now.Sub(p.at))/float64(d.HalfLife))
}

// releaseAt is when a penalty decays below Reuse, if nothing else happens.
func (p penalty) releaseAt(d Damping) time.Time {
	if p.value <= d.Reuse {
		return p.at
	}
	return p.at.Add(time.Duration(float64(d.HalfLife) * math.Log2(p.value/d.Reuse)))
}
