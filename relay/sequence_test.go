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
	if producerName("orders", "persistent://alpes/orders/events.v1", e0) == producerName("orders", "persistent://alpes/orders/events.v1", e1) {
		t.Error("two epochs share a producer name, and so its deduplication state")
	}
}

func TestTooManyRowsInOneTransactionIsRefused(t *testing.T) {
	if _, _, err := (position{commitLSN: 0x1000, index: maxIndex}).sequenceID(); err == nil {
		t.Error("want an error past maxIndex")
	}
}

func TestProducerName(t *testing.T) {
	cases := map[string]string{
		"persistent://alpes/orders/events.v1":   "relay.orders.orders.events.v1",
		"persistent://alpes/payments/events.v1": "relay.orders.payments.events.v1",
		"events":                                "relay.orders.events",
	}
	for topic, want := range cases {
		if got := producerName("orders", topic, 0); got != want {
			t.Errorf("producerName(%q) = %q, want %q", topic, got, want)
		}
	}
}
