package relay

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/relay/pgsource"
)

// rowParent is the span context of benchRow's traceparent header.
func rowParent(t *testing.T) (trace.TraceID, trace.SpanID) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	return tid, sid
}

// TestTracingOffCostsNothingPerMessage: with no tracer provider (or a
// no-op one) the per-message path allocates exactly what it does without
// the tracing hook, makes no span, and passes the row's trace context
// through untouched.
func TestTracingOffCostsNothingPerMessage(t *testing.T) {
	for name, relayCfg := range map[string]Config{"nil": {}, "no-op": {TracerProvider: tracing.Off().Provider("alpes-relay")}} {
		t.Run(name, func(t *testing.T) {
			src := benchSource(t, true)
			src.relay.tracer = tracing.Tracer(relayCfg.TracerProvider)
			if src.relay.tracer != nil {
				t.Fatal("tracing is on")
			}
			p := &pipeline{source: src}
			row := benchRow(t)
			begin := &pgsource.Begin{CommitLSN: 0x16B3748, CommitTime: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
			ctx := context.Background()
			done := func(error) {}
			encodeOnly := testing.AllocsPerRun(200, func() {
				p.openTx(begin)
				if _, _, _, _, err := p.encode(row); err != nil {
					t.Fatal(err)
				}
			})
			hooked := testing.AllocsPerRun(200, func() {
				p.openTx(begin)
				topic, _, msg, _, err := p.encode(row)
				if err != nil {
					t.Fatal(err)
				}
				if _, span := p.traceSend(ctx, row, topic, msg, done); span != nil {
					t.Fatal("a span with tracing off")
				}
			})
			if hooked != encodeOnly {
				t.Errorf("encode and the tracing hook allocate %v times per message, encode alone %v", hooked, encodeOnly)
			}
			p.openTx(begin)
			topic, _, msg, _, _ := p.encode(row)
			p.traceSend(ctx, row, topic, msg, done)
			if msg.Properties["traceparent"] != row.Headers["traceparent"] {
				t.Errorf("traceparent %q, want the row's %q", msg.Properties["traceparent"], row.Headers["traceparent"])
			}
		})
	}
}

// TestPublishSpanContinuesTheRowsTrace: with tracing on, each message gets
// a producer span, a child of the row's traceparent, ended by the receipt
// (or the failure), whose own context the message carries to consumers.
func TestPublishSpanContinuesTheRowsTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	src := benchSource(t, true)
	src.relay.tracer = tracing.Tracer(tracing.New(exp).Provider("alpes-relay"))
	p := &pipeline{source: src}
	row := benchRow(t)
	p.openTx(&pgsource.Begin{CommitLSN: 0x16B3748, CommitTime: time.Now()})
	topic, _, msg, _, err := p.encode(row)
	if err != nil {
		t.Fatal(err)
	}
	var receipted []error
	done, span := p.traceSend(context.Background(), row, topic, msg, func(err error) { receipted = append(receipted, err) })
	if span == nil {
		t.Fatal("no span with tracing on")
	}
	if len(exp.GetSpans()) != 0 {
		t.Fatal("the span ended before the receipt")
	}
	done(nil)
	spans := exp.GetSpans()
	if len(spans) != 1 || len(receipted) != 1 || receipted[0] != nil {
		t.Fatalf("after the receipt: %d spans, done called with %v", len(spans), receipted)
	}
	s := spans[0]
	tid, sid := rowParent(t)
	if s.Name != "send "+row.Topic || s.SpanKind != trace.SpanKindProducer {
		t.Errorf("span %q of kind %v, want send %s, producer", s.Name, s.SpanKind, row.Topic)
	}
	if s.Parent.TraceID() != tid || s.Parent.SpanID() != sid || !s.Parent.IsRemote() {
		t.Errorf("parent %v, want the row's traceparent", s.Parent)
	}
	if want := "00-" + tid.String() + "-" + s.SpanContext.SpanID().String() + "-01"; msg.Properties["traceparent"] != want {
		t.Errorf("the message carries %q, want the send span's %q", msg.Properties["traceparent"], want)
	}

	// A failed send ends its span as an error.
	exp.Reset()
	done, _ = p.traceSend(context.Background(), row, topic, msg, func(error) {})
	done(errors.New("broker gone"))
	if spans := exp.GetSpans(); len(spans) != 1 || spans[0].Status.Code != codes.Error {
		t.Errorf("a failed send exported %+v", spans)
	}
}
