package chaos

import (
	"math/rand/v2"
	"testing"
)

// TestPairsNeverShareWhatTheyDisturb deals many pairs from every fault and
// checks that the two faults of a pair never disturb the same thing, and
// that pairing deals every fault about as often as single dealing would.
func TestPairsNeverShareWhatTheyDisturb(t *testing.T) {
	all := AllFaults()
	d := &deck{rng: rand.New(rand.NewPCG(1, 2)), faults: all}
	dealt := map[Fault]int{}
	const pairs = 20 * 29 / 2
	for range pairs {
		a, b, ok := d.pair()
		if !ok {
			t.Fatalf("no partner for %s", a)
		}
		if a.resource() == b.resource() {
			t.Fatalf("%s paired with %s: both disturb %s", a, b, a.resource())
		}
		dealt[a]++
		dealt[b]++
	}
	for _, f := range all {
		if n := dealt[f]; n < 15 || n > 25 {
			t.Errorf("%s dealt %d times in %d pairs, want about 20", f, n, pairs)
		}
	}
}

// TestAPairNeedsTwoThings checks that a deck whose faults all disturb one
// thing deals a fault alone rather than pair it with itself.
func TestAPairNeedsTwoThings(t *testing.T) {
	d := &deck{rng: rand.New(rand.NewPCG(1, 2)), faults: []Fault{{Kill, "relay"}, {Freeze, "relay"}}}
	if a, b, ok := d.pair(); ok {
		t.Fatalf("paired %s with %s, which disturb the same relay", a, b)
	}
}

// TestParseFaultReadsWhatStringWrites round-trips every fault and refuses
// unknown ones.
func TestParseFaultReadsWhatStringWrites(t *testing.T) {
	for _, f := range AllFaults() {
		got, err := ParseFault(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFault(%q) = %v, %v", f, got, err)
		}
	}
	for _, s := range []string{"", "kill", "kill nobody", "explode relay"} {
		if _, err := ParseFault(s); err == nil {
			t.Errorf("ParseFault(%q) accepted it", s)
		}
	}
}
