package reporting_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
	"github.com/alpes/alpes/services/reporting"
)

func TestTimelineListsAnOrdersEventsInOrder(t *testing.T) {
	e := newEnv(t)
	pub := e.publisher()
	s := newStory(time.Now().Add(-time.Hour), 3000)
	other := newStory(time.Now().Add(-time.Hour), 100)
	placed, paid, confirmed := s.placed(), s.paid(paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED), s.confirmed()
	// The payment first: the timeline orders by the time each event states,
	// not by arrival.
	pub.publish(paid)
	pub.publish(placed, confirmed)
	pub.publish(other.approvedFlow()...)
	e.waitFor("both orders' events applied", func() bool { return e.svc.Stats().Applied == 6 })

	var tl reporting.Timeline
	e.getJSON("/v1/orders/"+s.order+"/timeline", 200, "application/json", &tl)
	if tl.OrderID != s.order || tl.Status != "confirmed" {
		t.Errorf("timeline of %s: order %s, status %s", s.order, tl.OrderID, tl.Status)
	}
	want := []struct {
		ev      event
		typ     string
		step    int
		mention string
	}{
		{placed, "alpes.orders.v1.OrderPlaced", 1, "Order placed by " + s.customer + ": 2 lines, 3 items, total 30.00 EUR."},
		{paid, "alpes.payments.v1.PaymentProcessed", 2, "Payment " + s.payment + " approved: 30.00 EUR charged."},
		{confirmed, "alpes.orders.v1.OrderConfirmed", 3, "Order confirmed, total 30.00 EUR, settled by payment " + s.payment + "."},
	}
	if len(tl.Entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(tl.Entries), len(want), tl.Entries)
	}
	for i, w := range want {
		got := tl.Entries[i]
		if got.EventID != w.ev.id || got.Type != w.typ {
			t.Errorf("entry %d: %s %s, want %s %s", i, got.EventID, got.Type, w.ev.id, w.typ)
		}
		if !got.OccurredAt.Equal(s.at(w.step).AsTime()) {
			t.Errorf("entry %d: occurred at %s, want the time the event states, %s", i, got.OccurredAt, s.at(w.step).AsTime())
		}
		if got.SourceCommittedAt == nil || !got.SourceCommittedAt.Equal(w.ev.commitTime) {
			t.Errorf("entry %d: source committed at %v, want %s", i, got.SourceCommittedAt, w.ev.commitTime)
		}
		if got.Summary != w.mention {
			t.Errorf("entry %d: summary %q, want %q", i, got.Summary, w.mention)
		}
	}
}

func TestTimelineOfAnUnknownOrderIsNotFound(t *testing.T) {
	e := newDBEnv(t, reporting.Config{})
	for _, id := range []string{uuid.NewString(), "not-a-uuid"} {
		var p map[string]any
		e.getJSON("/v1/orders/"+id+"/timeline", 404, "application/problem+json", &p)
		if p["status"] != float64(404) || !strings.Contains(p["detail"].(string), id) {
			t.Errorf("problem for %s: %v", id, p)
		}
	}
}
