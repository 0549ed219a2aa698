package broker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"
	pulsarlog "github.com/apache/pulsar-client-go/pulsar/log"
)

// reconnectWatch is a pulsar-client-go logger (an slog.Handler) that
// reports each reconnection of a producer, which the client tells only in
// its logs. A test that sends on a producer the broker disconnected waits
// for it first: pulsar-client-go v0.19 has a data race between a
// producer's reconnection and a concurrent send (both write and read the
// producer's name and encryptor), and the wait, through a channel, also
// orders the two for the race detector.
type reconnectWatch struct{ ch chan struct{} }

// producerReconnected is what pulsar-client-go v0.19 logs once a producer
// is connected again, after its PRODUCER_SUCCESS was fully handled.
const producerReconnected = "Reconnected producer to broker"

func newReconnectWatch() *reconnectWatch { return &reconnectWatch{ch: make(chan struct{}, 16)} }

// option installs the watch as the client's logger.
func (w *reconnectWatch) option(o *pulsar.ClientOptions) {
	o.Logger = pulsarlog.NewLoggerWithSlog(slog.New(w))
}

// wait waits for the next producer reconnection.
func (w *reconnectWatch) wait(t *testing.T) {
	t.Helper()
	select {
	case <-w.ch:
	case <-time.After(receiveTimeout):
		t.Fatal("timed out waiting for the producer to reconnect")
	}
}

func (w *reconnectWatch) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (w *reconnectWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == producerReconnected {
		w.ch <- struct{}{}
	}
	return nil
}

func (w *reconnectWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *reconnectWatch) WithGroup(string) slog.Handler      { return w }
