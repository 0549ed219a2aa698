package relay

import (
	"testing"
	"time"

	"github.com/alpes/alpes/relay/pgsource"
)

func TestTrackerConfirmsOnlyWhatIsReceiptedInOrder(t *testing.T) {
	tr := newTracker(100)
	now := time.Now()
	a := tr.begin(200, now)
	tr.add(a)
	tr.add(a)
	tr.seal(a, 210)
	b := tr.begin(300, now)
	tr.add(b)
	tr.seal(b, 310)

	steps := []struct {
		do   func()
		want pgsource.LSN
	}{
		{func() { tr.receipted(b) }, 100}, // b is done, but a is not
		{func() { tr.receipted(a) }, 100}, // a still waits for one receipt
		{func() { tr.receipted(a) }, 310}, // both done: b's end
	}
	for i, s := range steps {
		s.do()
		if got := tr.Confirmed(); got != s.want {
			t.Fatalf("step %d: confirmed %s, want %s", i, got, s.want)
		}
	}
}

func TestTrackerWaitsForTheCommit(t *testing.T) {
	tr := newTracker(100)
	a := tr.begin(200, time.Now())
	tr.add(a)
	tr.receipted(a)
	if got := tr.Confirmed(); got != 100 {
		t.Fatalf("confirmed %s before the commit was seen", got)
	}
	tr.idle(500)
	if got := tr.Confirmed(); got != 100 {
		t.Fatalf("a keepalive confirmed %s while a transaction was open", got)
	}
	tr.seal(a, 210)
	if got := tr.Confirmed(); got != 210 {
		t.Fatalf("confirmed %s, want 210", got)
	}
	tr.idle(500)
	if got := tr.Confirmed(); got != 500 {
		t.Fatalf("idle keepalive: confirmed %s, want 500", got)
	}
	tr.idle(400)
	if got := tr.Confirmed(); got != 500 {
		t.Fatalf("confirmed position went back to %s", got)
	}
}

func TestTrackerEmptyTransactionConfirmsAtCommit(t *testing.T) {
	tr := newTracker(100)
	hb := tr.begin(150, time.Now()) // a heartbeat: no outbox rows
	tr.seal(hb, 160)
	if got := tr.Confirmed(); got != 160 {
		t.Fatalf("confirmed %s, want 160", got)
	}
	if _, ok := tr.oldestUnconfirmed(); ok {
		t.Error("nothing should be unconfirmed")
	}
}

func TestTrackerCompacts(t *testing.T) {
	tr := newTracker(1)
	for i := range 5000 {
		tx := tr.begin(pgsource.LSN(10+i), time.Now())
		tr.seal(tx, pgsource.LSN(11+i))
	}
	if got := tr.Confirmed(); got != 5010 {
		t.Fatalf("confirmed %s, want 5010", got)
	}
	if len(tr.txs) > 2048 {
		t.Errorf("tracker keeps %d finished transactions", len(tr.txs))
	}
}

// A keepalive that arrives while transactions before it await receipts
// still counts once they have them: nothing else may move an idle source's
// slot. The stream asks for the next keepalive only once the confirmed
// position has reached the last one it saw, so a keepalive dropped here
// would leave the slot behind until the next heartbeat.
func TestTrackerKeepsAKeepaliveThatArrivesWhileReceiptsAreDue(t *testing.T) {
	tr := newTracker(100)
	now := time.Now()
	a := tr.begin(200, now)
	tr.add(a)
	tr.seal(a, 210)
	tr.idle(500) // a's message is still on its way to the broker
	if got := tr.Confirmed(); got != 100 {
		t.Fatalf("a keepalive confirmed %s past a transaction without its receipt", got)
	}
	b := tr.begin(600, now)
	tr.add(b)
	tr.seal(b, 610)
	tr.idle(700)
	tr.receipted(a)
	if got := tr.Confirmed(); got != 500 {
		t.Fatalf("a's receipt: confirmed %s, want 500 (the keepalive after a)", got)
	}
	if _, ok := tr.oldestUnconfirmed(); !ok {
		t.Fatal("b awaits its receipt: want it reported as unconfirmed")
	}
	tr.receipted(b)
	if got := tr.Confirmed(); got != 700 {
		t.Fatalf("b's receipt: confirmed %s, want 700 (the keepalive after b)", got)
	}
	if _, ok := tr.oldestUnconfirmed(); ok {
		t.Error("nothing should be unconfirmed")
	}
}
