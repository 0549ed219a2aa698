package relay

import (
	"testing"

	"github.com/alpes/alpes/relay/pgsource"
)

func TestSequenceIDsGrowWithTheStream(t *testing.T) {
	// Commit LSNs of consecutive small transactions are close together; a big
	// transaction uses many indexes (one per row). Ids must still grow strictly.
	stream := []position{
		{commitLSN: 0x1000, index: 0},
		{commitLSN: 0x1000, index: 1},
		{commitLSN: 0x1000, index: 100_000},
		{commitLSN: 0x1018, index: 0}, // the next commit record, 24 bytes on
		{commitLSN: 0x1018, index: maxIndex - 1},
		{commitLSN: 0x1030, index: 0},
		{commitLSN: 0x7_0000_0000, index: 3},
	}
	var last int64 = -1
	for _, p := range stream {
		seq, epoch, err := p.sequenceID()
		if err != nil {
			t.Fatal(err)
		}
		if epoch != 0 {
			t.Errorf("%v: epoch %d, want 0", p, epoch)
		}
		if seq <= last {
			t.Errorf("%v: sequence id %d does not grow past %d", p, seq, last)
		}
		last = seq
	}
}

func TestSequenceIDIsAFunctionOfPosition(t *testing.T) {
	p := position{commitLSN: 0x16B3748, index: 7}
	a, _, _ := p.sequenceID()
	b, _, _ := p.sequenceID()
	if a != b || a != 0x16B3748<<indexBits+7 {
		t.Errorf("sequence ids %d and %d for one position", a, b)
	}
}

func TestEpochsSplitTheLSNSpace(t *testing.T) {
	lastOfEpoch0 := position{commitLSN: pgsource.LSN(1<<lsnBits - 8), index: 0}
	firstOfEpoch1 := position{commitLSN: pgsource.LSN(1 << lsnBits), index: 0}
	s0, e0, _ := lastOfEpoch0.sequenceID()
	s1, e1, _ := firstOfEpoch1.sequenceID()
	if e0 != 0 || e1 != 1 {
		t.Errorf("epochs %d, %d; want 0, 1", e0, e1)
	}
	if s0 < 0 || s1 < 0 {
		t.Errorf("negative sequence ids %d, %d", s0, s1)
	}
	if producerName("orders", "s", "persistent://alpes/orders/events.v1", 3, e0) == producerName("orders", "s", "persistent://alpes/orders/events.v1", 3, e1) {
		t.Error("two epochs share a producer name, and so its deduplication state")
	}
}

func TestTooManyRowsInOneTransactionIsRefused(t *testing.T) {
	if _, _, err := (position{commitLSN: 0x1000, index: maxIndex}).sequenceID(); err == nil {
		t.Error("want an error past maxIndex")
	}
}

func TestProducerName(t *testing.T) {
	cases := []struct {
		topic string
		lane  int
		epoch uint64
		want  string
	}{
		{"persistent://alpes/orders/events.v1", 0, 0, "relay.orders.0123456789abcdef.orders.events.v1.l00"},
		{"persistent://alpes/payments/events.v1", 31, 0, "relay.orders.0123456789abcdef.payments.events.v1.l31"},
		{"persistent://alpes/payments/events.v1", 7, 2, "relay.orders.0123456789abcdef.payments.events.v1.l07.e2"},
		{"events", noLane, 0, "relay.orders.0123456789abcdef.events"},
	}
	for _, c := range cases {
		if got := producerName("orders", "0123456789abcdef", c.topic, c.lane, c.epoch); got != c.want {
			t.Errorf("producerName(%q, lane %d, epoch %d) = %q, want %q", c.topic, c.lane, c.epoch, got, c.want)
		}
	}
}

// Every part of a source's identity changes the stream token, and with it
// the producers' names, so that two streams of WAL never share the broker's
// deduplication state.
func TestStreamTokenSeparatesStreamsOfWAL(t *testing.T) {
	base := pgsource.Identity{SystemID: "7301234567890123456", Timeline: 1, Database: "orders", WALFlush: 0x1000}
	seen := map[string]string{}
	for what, id := range map[string]pgsource.Identity{
		"the source":                 base,
		"another cluster":            {SystemID: "7301234567890123457", Timeline: 1, Database: "orders"},
		"a promoted standby":         {SystemID: base.SystemID, Timeline: 2, Database: "orders"},
		"another database of it":     {SystemID: base.SystemID, Timeline: 1, Database: "payments"},
		"a mix of system and digits": {SystemID: base.SystemID + "1", Timeline: 1, Database: "orders"},
	} {
		token := streamToken(id)
		if len(token) != streamTokenLen {
			t.Errorf("%s: token %q is not %d characters long", what, token, streamTokenLen)
		}
		if other, ok := seen[token]; ok {
			t.Errorf("%s and %s share the token %s", what, other, token)
		}
		seen[token] = what
	}
	later := base
	later.WALFlush = 0x2000
	if streamToken(later) != streamToken(base) {
		t.Error("the token changes as the source writes WAL; it must name the stream, not a position in it")
	}
}

func TestCommitLSNOfInvertsSequenceID(t *testing.T) {
	for _, p := range []position{
		{commitLSN: 0x16B3740, index: 0},
		{commitLSN: 0x16B3740, index: 7},
		{commitLSN: 1<<lsnBits + 0x28, index: 3},
		{commitLSN: 5<<lsnBits - 24, index: maxIndex - 1},
	} {
		seq, epoch, err := p.sequenceID()
		if err != nil {
			t.Fatal(err)
		}
		// Exact while the index fits its 20 bits; beyond, still inside
		// the 24 bytes of the commit record.
		got := commitLSNOf(seq, epoch)
		if got < p.commitLSN || got >= p.commitLSN+24 || (p.index < 1<<indexBits && got != p.commitLSN) {
			t.Errorf("commitLSNOf(sequenceID(%s, %d)) = %s", p.commitLSN, p.index, got)
		}
	}
}
