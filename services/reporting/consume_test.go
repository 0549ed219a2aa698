package reporting_test

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	paymentsv1 "github.com/alpes/alpes/proto/alpes/payments/v1"
	"github.com/alpes/alpes/services/reporting"
)

// want returns the report row an order's complete story must produce.
func (s story) want(status string) []string {
	t := func(step int) string { return s.at(step).AsTime().UTC().Format(time.RFC3339Nano) }
	total := strconv.FormatInt(s.total, 10)
	row := []string{s.order, s.customer, status, total, "EUR", "2", "3", s.payment, "approved", total, "",
		t(0), t(1), t(2), t(3)}
	if status == "rejected" {
		row[8], row[10] = "declined", "payment_declined"
	}
	return row
}

// reportRows fetches the JSON report and indexes its rows by order id.
func (e *env) reportRows() map[string]reporting.Row {
	e.t.Helper()
	var rows []reporting.Row
	e.getJSON("/v1/reports/orders?format=json", 200, "application/json", &rows)
	byID := map[string]reporting.Row{}
	for _, r := range rows {
		byID[r.OrderID] = r
	}
	return byID
}

func TestEventsApplyExactlyOnceDespiteDuplicatesAndRedelivery(t *testing.T) {
	e := newEnv(t)
	pub := e.publisher()
	start := time.Now().Add(-time.Hour)
	var approved, declined []story
	var events []event
	for i := range 9 {
		s := newStory(start.Add(time.Duration(i)*time.Minute), int64(1000*(i+1)))
		if i%3 == 2 {
			declined = append(declined, s)
			events = append(events, s.declinedFlow()...)
		} else {
			approved = append(approved, s)
			events = append(events, s.approvedFlow()...)
		}
	}
	refused := newStory(start.Add(time.Hour), 500)
	events = append(events, refused.rejected(ordersv1.RejectionReason_REJECTION_REASON_UNKNOWN_PRODUCT, 1))

	for _, ev := range events {
		pub.publish(ev, ev) // a re-sent message keeps its event id
	}
	n := int64(len(events))
	e.waitFor("every event applied once and its copy dropped", func() bool {
		s := e.svc.Stats()
		return s.Applied == n && s.Duplicates == n
	})

	// Everything delivered again, to a new instance, as after acknowledgements
	// lost in a crash.
	e.stop()
	e.resetSubscription(e.topics.OrderEvents)
	e.resetSubscription(e.topics.PaymentEvents)
	e.start()
	e.waitFor("every event redelivered and dropped", func() bool { return e.svc.Stats().Duplicates == 2*n })

	if s := e.svc.Stats(); s.Applied != 0 || s.Parked != 0 || s.DeadLettered != 0 {
		t.Errorf("stats after redelivery %+v: want nothing applied, parked or dead-lettered", s)
	}
	for table, want := range map[string]int{"order_facts": 10, "timeline_entries": int(n), "inbox": int(n)} {
		if got := e.count("SELECT count(*) FROM " + table); got != want {
			t.Errorf("%s: %d rows, want %d", table, got, want)
		}
	}
	rows := e.reportRows()
	for _, s := range approved {
		assertRow(t, rows[s.order], s.want("confirmed"))
	}
	for _, s := range declined {
		assertRow(t, rows[s.order], s.want("rejected"))
	}
	r := rows[refused.order]
	if r.Status != "rejected" || r.RejectionReason == nil || *r.RejectionReason != "unknown_product" ||
		r.RequestedAt == nil || !r.RequestedAt.Equal(refused.at(0).AsTime()) || r.PlacedAt != nil {
		t.Errorf("order rejected at placement: %v", r.Values())
	}
}

// TestEventsApplyInAnyOrder publishes every order of an order's events and
// wants the same row from each: the upserts do not depend on arrival order.
func TestEventsApplyInAnyOrder(t *testing.T) {
	e := newEnv(t)
	pub := e.publisher()
	start := time.Now().Add(-time.Hour)
	type check struct {
		s      story
		status string
	}
	var checks []check
	total := 0
	for _, flow := range []string{"confirmed", "rejected"} {
		for _, perm := range permutations(3) {
			s := newStory(start, 4000)
			evs := s.approvedFlow()
			if flow == "rejected" {
				evs = s.declinedFlow()
			}
			for _, i := range perm {
				pub.publish(evs[i])
			}
			total += len(evs)
			checks = append(checks, check{s, flow})
		}
	}
	e.waitFor("every event applied", func() bool { return e.svc.Stats().Applied == int64(total) })
	rows := e.reportRows()
	for _, c := range checks {
		assertRow(t, rows[c.s.order], c.s.want(c.status))
	}
}

func TestPaymentBeforeOrderPlaced(t *testing.T) {
	for _, status := range []paymentsv1.PaymentStatus{
		paymentsv1.PaymentStatus_PAYMENT_STATUS_APPROVED, paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED,
	} {
		t.Run(status.String(), func(t *testing.T) {
			e := newEnv(t)
			pub := e.publisher()
			s := newStory(time.Now().Add(-time.Minute), 2500)
			pub.publish(s.paid(status))
			e.waitFor("the payment applied", func() bool { return e.svc.Stats().Applied == 1 })

			early := e.reportRows()[s.order]
			if early.Status != "placed" || early.PaymentStatus == nil || early.CustomerID != nil || early.TotalMinor != nil {
				t.Errorf("after the payment alone: %v; want placed, with the payment and no order details", early.Values())
			}

			final, settle := "confirmed", s.confirmed()
			if status == paymentsv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
				final, settle = "rejected", s.rejected(ordersv1.RejectionReason_REJECTION_REASON_PAYMENT_DECLINED, 3)
			}
			pub.publish(s.placed(), settle)
			e.waitFor("the order's events applied", func() bool { return e.svc.Stats().Applied == 3 })
			assertRow(t, e.reportRows()[s.order], s.want(final))
		})
	}
}

func assertRow(t *testing.T, got reporting.Row, want []string) {
	t.Helper()
	if !slices.Equal(got.Values(), want) {
		t.Errorf("order %s:\n got %q\nwant %q", want[0], got.Values(), want)
	}
}

// permutations returns every ordering of 0…n-1.
func permutations(n int) [][]int {
	if n == 1 {
		return [][]int{{0}}
	}
	var out [][]int
	for _, p := range permutations(n - 1) {
		for i := 0; i <= len(p); i++ {
			q := slices.Insert(slices.Clone(p), i, n-1)
			out = append(out, q)
		}
	}
	if len(out) == 0 {
		panic(fmt.Sprint("no permutations of ", n))
	}
	return out
}

// TestUnapplicableEventsAreParked: an unknown payment status, an order id
// that is not a UUID, and a second terminal event contradicting the first
// are set aside for an operator, and change nothing.
func TestUnapplicableEventsAreParked(t *testing.T) {
	e := newEnv(t)
	pub := e.publisher()
	s := newStory(time.Now().Add(-time.Hour), 1200)
	unknownStatus := s.paid(paymentsv1.PaymentStatus(99))
	badID := s.placed()
	badID.body.(*ordersv1.OrderPlaced).OrderId = "order-1"
	contradiction := s.rejected(ordersv1.RejectionReason_REJECTION_REASON_PAYMENT_DECLINED, 4)
	pub.publish(unknownStatus, badID)
	pub.publish(s.approvedFlow()...)
	pub.publish(contradiction)
	e.waitFor("three parked and three applied", func() bool {
		st := e.svc.Stats()
		return st.Parked == 3 && st.Applied == 3
	})
	for _, ev := range []event{unknownStatus, badID, contradiction} {
		if n := e.count(`SELECT count(*) FROM parked_messages WHERE event_id = $1`, ev.id); n != 1 {
			t.Errorf("event %s parked %d times, want once", ev.id, n)
		}
	}
	assertRow(t, e.reportRows()[s.order], s.want("confirmed"))
	if n := e.count(`SELECT count(*) FROM timeline_entries`); n != 3 {
		t.Errorf("%d timeline entries, want the 3 applied events'", n)
	}
}

// TestTwoInstancesShareTheWork runs two instances on one subscription, so an
// order's orders and payments events may be applied by different instances
// at once; every order still ends as one complete row.
func TestTwoInstancesShareTheWork(t *testing.T) {
	e := newEnv(t)
	first := e.svc
	e.start()
	second := e.svc
	pub := e.publisher()
	start := time.Now().Add(-time.Hour)
	var stories []story
	for i := range 60 {
		s := newStory(start.Add(time.Duration(i)*time.Second), int64(100+i))
		stories = append(stories, s)
		pub.publish(s.approvedFlow()...)
	}
	want := int64(3 * len(stories))
	e.waitFor("every event applied by one of the instances", func() bool {
		return first.Stats().Applied+second.Stats().Applied == want
	})
	rows := e.reportRows()
	for _, s := range stories {
		assertRow(t, rows[s.order], s.want("confirmed"))
	}
	t.Logf("applied %d and %d", first.Stats().Applied, second.Stats().Applied)
}
