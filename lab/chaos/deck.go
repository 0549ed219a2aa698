package chaos

import (
	"math/rand/v2"
	"slices"
)

// deck deals faults in shuffled rounds: each round holds every fault once,
// so that n rounds inject each fault n times, in an order the seed decides.
type deck struct {
	rng    *rand.Rand
	faults []Fault
	left   []Fault
}

// refill appends a shuffled round to what is left.
func (d *deck) refill() {
	round := slices.Clone(d.faults)
	d.rng.Shuffle(len(round), func(i, j int) { round[i], round[j] = round[j], round[i] })
	d.left = append(d.left, round...)
}

func (d *deck) next() Fault {
	if len(d.left) == 0 {
		d.refill()
	}
	f := d.left[0]
	d.left = d.left[1:]
	return f
}

// pair deals two faults to hold together: the next one, and the first one
// left after it that disturbs something else (Fault.resource), taken out
// of its round. When nothing left fits, the next round is dealt into the
// search. ok is false only when no fault of the deck fits with the first.
func (d *deck) pair() (first, second Fault, ok bool) {
	first = d.next()
	for attempt := range 2 {
		for i, f := range d.left {
			if f.resource() != first.resource() {
				d.left = slices.Delete(d.left, i, i+1)
				return first, f, true
			}
		}
		if attempt == 0 {
			d.refill()
		}
	}
	return first, Fault{}, false
}
