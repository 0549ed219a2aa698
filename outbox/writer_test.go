package outbox_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/outbox"
	ordersv1 "github.com/alpes/alpes/proto/alpes/orders/v1"
	"github.com/alpes/alpes/services/eventcatalog"
)

// queuedHeaders queues msg with w in ctx and returns the headers of the row.
func queuedHeaders(t *testing.T, ctx context.Context, w outbox.Writer, msg outbox.Message) map[string]string {
	t.Helper()
	b := &pgx.Batch{}
	if _, err := w.Queue(ctx, b, msg); err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal(b.QueuedQueries[0].Arguments[6].([]byte), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func placeOrder() outbox.Message {
	return outbox.Message{
		Topic: eventcatalog.DefaultTopics().OrderCommands, AggregateID: "o-1",
		Body:    &ordersv1.PlaceOrder{OrderId: "o-1"},
		Headers: map[string]string{"request-id": "r-1", "traceparent": "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"},
	}
}

// TestWriterTracesTheAppendAndCarriesItsContext: a traced writer makes an
// internal span, a child of the caller's, and writes that span's W3C
// context into the row's headers, replacing a traceparent given there.
func TestWriterTracesTheAppendAndCarriesItsContext(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := tracing.New(exp).Provider("alpes-test")
	ctx, parent := tracing.Tracer(tp).Start(context.Background(), "request")
	h := queuedHeaders(t, ctx, outbox.NewWriter(tp), placeOrder())
	parent.End()

	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("exported %d spans, want 2", len(spans))
	}
	app := spans[0]
	if app.Name != "outbox append alpes.orders.v1.PlaceOrder" || app.SpanKind != trace.SpanKindInternal {
		t.Errorf("span %q of kind %v", app.Name, app.SpanKind)
	}
	if app.Parent.SpanID() != parent.SpanContext().SpanID() || app.SpanContext.TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("the append's parent is %v, want the caller's span %v", app.Parent, parent.SpanContext())
	}
	want := "00-" + app.SpanContext.TraceID().String() + "-" + app.SpanContext.SpanID().String() + "-01"
	if h["traceparent"] != want || h["request-id"] != "r-1" {
		t.Errorf("headers %v, want traceparent %s and the request id", h, want)
	}
}

// TestWriterWithTracingOff: no span; the caller's trace context, when there
// is one, still travels; without one, the headers are the caller's.
func TestWriterWithTracingOff(t *testing.T) {
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), sc)
	for name, w := range map[string]outbox.Writer{"zero": {}, "nil provider": outbox.NewWriter(nil)} {
		h := queuedHeaders(t, ctx, w, placeOrder())
		if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; h["traceparent"] != want {
			t.Errorf("%s: traceparent %q, want the caller's %q", name, h["traceparent"], want)
		}
		h = queuedHeaders(t, context.Background(), w, placeOrder())
		if h["traceparent"] != placeOrder().Headers["traceparent"] || h["request-id"] != "r-1" {
			t.Errorf("%s: headers without a trace in ctx: %v, want the message's", name, h)
		}
	}
}
