package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/broker/brokertest"
)

func newReader(t *testing.T, c pulsar.Client, opts pulsar.ReaderOptions) pulsar.Reader {
	t.Helper()
	r, err := c.CreateReader(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func next(t *testing.T, r pulsar.Reader) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), receiveTimeout)
	defer cancel()
	m, err := r.Next(ctx)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return string(m.Payload())
}

func TestReaders(t *testing.T) {
	t.Parallel()
	for _, batching := range []bool{false, true} {
		name := "batching=false"
		if batching {
			name = "batching=true"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := newEnv(t).client(t)
			tp := topic(t)

			empty := newReader(t, c, pulsar.ReaderOptions{Topic: tp, StartMessageID: pulsar.EarliestMessageID()})
			if empty.HasNext() {
				t.Fatal("HasNext on an empty topic")
			}
			p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: !batching})
			ids := send(t, p, payloads("m-", 5)...)

			t.Run("earliest", func(t *testing.T) {
				r := newReader(t, c, pulsar.ReaderOptions{Topic: tp, StartMessageID: pulsar.EarliestMessageID()})
				for i := range 5 {
					if !r.HasNext() {
						t.Fatalf("HasNext false before message %d", i)
					}
					if got, want := next(t, r), "m-"+itoa(i); got != want {
						t.Fatalf("got %q, want %q", got, want)
					}
				}
				if r.HasNext() {
					t.Fatal("HasNext true at the end of the topic")
				}
			})
			t.Run("from id, exclusive and inclusive", func(t *testing.T) {
				r := newReader(t, c, pulsar.ReaderOptions{Topic: tp, StartMessageID: ids[2]})
				if got := next(t, r); got != "m-3" {
					t.Fatalf("after ids[2] got %q, want m-3", got)
				}
				ri := newReader(t, c, pulsar.ReaderOptions{Topic: tp, StartMessageID: ids[2], StartMessageIDInclusive: true})
				if got := next(t, ri); got != "m-2" {
					t.Fatalf("from ids[2] inclusive got %q, want m-2", got)
				}
			})
			t.Run("latest", func(t *testing.T) {
				r := newReader(t, c, pulsar.ReaderOptions{Topic: tp, StartMessageID: pulsar.LatestMessageID()})
				send(t, p, &pulsar.ProducerMessage{Payload: []byte("new")})
				if got := next(t, r); got != "new" {
					t.Fatalf("latest reader got %q, want new", got)
				}
			})
			// Held against the embedded broker only. On Pulsar 4.0.8 with
			// pulsar-client-go v0.19 an inclusive reader at the latest
			// message sometimes received nothing within 10 s: in 2 of about
			// 25 runs of the suite with batching, and in one CI run of
			// 2026-12-07 without. The client subscribes at the latest
			// position, asks for the last id and seeks to it while the
			// subscription is new; the cause is not established. The
			// reference being unreliable here, the case cannot be held to it;
			// alpes itself never reads from the latest message.
			t.Run("latest inclusive", func(t *testing.T) {
				brokertest.SkipOnReal(t, "Pulsar's own answer to an inclusive reader at the latest message is not reliable (see the comment)")
				r := newReader(t, c, pulsar.ReaderOptions{Topic: tp, StartMessageID: pulsar.LatestMessageID(),
					StartMessageIDInclusive: true})
				if got := next(t, r); got != "new" {
					t.Fatalf("latest inclusive reader got %q, want the last message", got)
				}
			})
			t.Run("seek", func(t *testing.T) {
				r := newReader(t, c, pulsar.ReaderOptions{Topic: tp, StartMessageID: pulsar.EarliestMessageID()})
				next(t, r)
				if err := r.Seek(ids[3]); err != nil {
					t.Fatal(err)
				}
				// Not inclusive: the client skips the message sought.
				if got := next(t, r); got != "m-4" {
					t.Fatalf("after seek to ids[3] got %q, want m-4", got)
				}
			})
		})
	}
}

func TestConsumerSeekByIDAndTime(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	// Inclusive: the Go client drops the message a seek goes to otherwise.
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s",
		SubscriptionInitialPosition: pulsar.SubscriptionPositionEarliest, StartMessageIDInclusive: true})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	ids := send(t, p, payloads("m-", 3)...)
	for range 3 {
		cs.Ack(receive(t, cs))
	}
	// Publish times have millisecond resolution: make the next batch
	// distinguishable by time without sleeping on the happy path.
	boundary := time.Now().Add(time.Millisecond)
	for time.Now().Before(boundary.Add(time.Millisecond)) {
		time.Sleep(time.Millisecond)
	}
	send(t, p, payloads("late-", 2)...)
	for range 2 {
		cs.Ack(receive(t, cs))
	}

	if err := cs.Seek(ids[1]); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m-1", "m-2", "late-0"} {
		if got := string(receive(t, cs).Payload()); got != want {
			t.Fatalf("after seek by id got %q, want %q", got, want)
		}
	}
	if err := cs.SeekByTime(boundary.Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if got := string(receive(t, cs).Payload()); got != "late-0" {
		t.Fatalf("after seek by time got %q, want late-0", got)
	}
}

func TestGetLastMessageIDs(t *testing.T) {
	t.Parallel()
	c := newEnv(t).client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	ids := send(t, p, payloads("m-", 3)...)
	last, err := cs.GetLastMessageIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 || last[0].EntryID() != ids[2].EntryID() || last[0].LedgerID() != ids[2].LedgerID() {
		t.Fatalf("last message ids %v, want the id of %v", last, ids[2])
	}
}
