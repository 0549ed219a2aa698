package devstack_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/internal/tracing"
	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/stack/stacktest"
	"github.com/alpes/alpes/services/eventcatalog"
)

// notifyingExporter keeps every span in memory and signals each export, so
// the test waits for spans without polling on a clock.
type notifyingExporter struct {
	*tracetest.InMemoryExporter
	exported chan struct{}
}

func (e notifyingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.InMemoryExporter.ExportSpans(ctx, spans)
	select {
	case e.exported <- struct{}{}:
	default: // a signal is pending already
	}
	return err
}

// expectedSpan is one span of an order's trace: the component that made
// it, its name, kind and event type (alpes.event.type, "" for the HTTP
// span), and the key of its parent ("" for the client's remote span).
type expectedSpan struct {
	service, name string
	kind          trace.SpanKind
	eventType     string
	parent        string
}

func (e expectedSpan) key() string { return spanKey(e.service, e.name, e.eventType) }

func spanKey(service, name, eventType string) string {
	return fmt.Sprintf("%s: %s [%s]", service, name, eventType)
}

// orderTrace is the trace one order should leave, from the bff's HTTP span
// to the last consumer's apply; final is OrderConfirmed or OrderRejected.
func orderTrace(topics eventcatalog.Topics, final string) []expectedSpan {
	const (
		place, placed  = "alpes.orders.v1.PlaceOrder", "alpes.orders.v1.OrderPlaced"
		paid           = "alpes.payments.v1.PaymentProcessed"
		server, intern = trace.SpanKindServer, trace.SpanKindInternal
		prod, cons     = trace.SpanKindProducer, trace.SpanKindConsumer
	)
	final = "alpes.orders.v1." + final
	bff, ord, pay, rep, rel := tracing.ServiceName("bff"), tracing.ServiceName("orders"), tracing.ServiceName("payments"),
		tracing.ServiceName("reporting"), tracing.ServiceName("relay")
	cmds, events, payments := topics.OrderCommands, topics.OrderEvents, topics.PaymentEvents
	return []expectedSpan{
		{bff, "POST /v1/orders", server, "", ""},
		{bff, "outbox append " + place, intern, place, spanKey(bff, "POST /v1/orders", "")},
		{rel, "send " + cmds, prod, place, spanKey(bff, "outbox append "+place, place)},
		{ord, "process " + cmds, cons, place, spanKey(rel, "send "+cmds, place)},
		{ord, "outbox append " + placed, intern, placed, spanKey(ord, "process "+cmds, place)},
		{rel, "send " + events, prod, placed, spanKey(ord, "outbox append "+placed, placed)},
		{pay, "process " + events, cons, placed, spanKey(rel, "send "+events, placed)},
		{rep, "process " + events, cons, placed, spanKey(rel, "send "+events, placed)},
		{bff, "process " + events, cons, placed, spanKey(rel, "send "+events, placed)},
		{pay, "outbox append " + paid, intern, paid, spanKey(pay, "process "+events, placed)},
		{rel, "send " + payments, prod, paid, spanKey(pay, "outbox append "+paid, paid)},
		{ord, "process " + payments, cons, paid, spanKey(rel, "send "+payments, paid)},
		{rep, "process " + payments, cons, paid, spanKey(rel, "send "+payments, paid)},
		{ord, "outbox append " + final, intern, final, spanKey(ord, "process "+payments, paid)},
		{rel, "send " + events, prod, final, spanKey(ord, "outbox append "+final, final)},
		{bff, "process " + events, cons, final, spanKey(rel, "send "+events, final)},
		{rep, "process " + events, cons, final, spanKey(rel, "send "+events, final)},
		{pay, "process " + events, cons, final, spanKey(rel, "send "+events, final)},
	}
}

// TestOneTracePerOrder runs the whole stack with tracing on, exporting to
// memory, places one order with a client's W3C traceparent, and checks the
// trace it leaves: every span under the client's trace id, from the bff's
// HTTP server span through each outbox append, the relay's producer spans
// and every consumer's apply, each a child of the one before it, with the
// names and kinds docs/tracing.md lists.
func TestOneTracePerOrder(t *testing.T) {
	if _, err := pgcluster.FindBinDir(); err != nil && testing.Short() {
		t.Skipf("skipping under -short: %v", err)
	}
	exp := notifyingExporter{tracetest.NewInMemoryExporter(), make(chan struct{}, 1)}
	out := &stacktest.SyncBuffer{}
	cfg := stackConfig(t, out)
	cfg.Tracing = tracing.New(exp)
	dev := stacktest.Go(t, func(ctx context.Context) error { return devstack.Run(ctx, cfg) })
	t.Cleanup(func() {
		if err := dev.Stop(); err != nil {
			t.Errorf("the stack stopped with %v", err)
		}
	})
	printed := dev.WaitForOutput(t, out, "Ctrl-C", 2*time.Minute)
	bffURL := urlAfter(t, printed, "Public API (bff):")
	topics, err := eventcatalog.TopicsFor(tenantOf(cfg))
	if err != nil {
		t.Fatal(err)
	}

	// The client's own span, which the bff's must continue.
	clientTrace, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	clientSpan, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	req, err := http.NewRequest(http.MethodPost, bffURL+"/v1/orders",
		strings.NewReader(`{"customer_id":"c-1","address":"Alpenweg 1, Zermatt","items":[{"sku":"AXE-ICE-50","quantity":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "trace-1")
	req.Header.Set("Traceparent", "00-"+clientTrace.String()+"-"+clientSpan.String()+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var accepted struct {
		OrderID string `json:"order_id"`
	}
	err = json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/orders: %s, %v", resp.Status, err)
	}
	var view struct {
		Status string `json:"status"`
	}
	for i := 0; i < 4 && (i == 0 || view.Status == "pending"); i++ { // long polls of at most 30 s
		stacktest.GetJSON(t, bffURL+"/v1/orders/"+accepted.OrderID+"?wait=30s", &view)
	}
	final := map[string]string{"confirmed": "OrderConfirmed", "rejected": "OrderRejected"}[view.Status]
	if final == "" {
		t.Fatalf("order %s is %q after two minutes", accepted.OrderID, view.Status)
	}
	want := orderTrace(topics, final)

	// Wait, export by export, until every expected span is in the trace.
	var got map[string][]tracetest.SpanStub
	deadline := time.After(time.Minute)
	for {
		got = map[string][]tracetest.SpanStub{}
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == clientTrace {
				got[stubKey(s)] = append(got[stubKey(s)], s)
			}
		}
		missing := 0
		for _, w := range want {
			if len(got[w.key()]) == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		select {
		case <-exp.exported:
		case <-deadline:
			t.Fatalf("after a minute, %d spans of the trace are missing; it has:\n%s", missing, describe(got))
		}
	}

	t.Logf("the trace of order %s:\n%s", accepted.OrderID, describe(got))
	if len(got) != len(want) {
		t.Errorf("the trace has %d kinds of span, want %d:\n%s", len(got), len(want), describe(got))
	}
	for _, w := range want {
		spans := got[w.key()]
		if len(spans) != 1 {
			t.Errorf("%s: %d spans, want 1", w.key(), len(spans))
			continue
		}
		s := spans[0]
		if s.SpanKind != w.kind {
			t.Errorf("%s: kind %v, want %v", w.key(), s.SpanKind, w.kind)
		}
		if w.parent == "" {
			if !s.Parent.IsRemote() || s.Parent.SpanID() != clientSpan {
				t.Errorf("%s: parent %v, want the client's remote span %s", w.key(), s.Parent, clientSpan)
			}
			continue
		}
		parents := got[w.parent]
		if len(parents) != 1 || s.Parent.SpanID() != parents[0].SpanContext.SpanID() {
			t.Errorf("%s: parent %s, want %s", w.key(), s.Parent.SpanID(), w.parent)
		}
	}
}

// stubKey is a span's key in orderTrace's terms.
func stubKey(s tracetest.SpanStub) string {
	var service, eventType string
	for _, kv := range s.Resource.Attributes() {
		if kv.Key == "service.name" {
			service = kv.Value.AsString()
		}
	}
	for _, kv := range s.Attributes {
		if kv.Key == tracing.EventType {
			eventType = kv.Value.AsString()
		}
	}
	return spanKey(service, s.Name, eventType)
}

func describe(got map[string][]tracetest.SpanStub) string {
	var lines []string
	for k, spans := range got {
		lines = append(lines, fmt.Sprintf("  %d× %s", len(spans), k))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// tenantOf is the Pulsar tenant a stack of cfg runs under.
func tenantOf(cfg devstack.Config) string {
	if cfg.Tenant != "" {
		return cfg.Tenant
	}
	return eventcatalog.DefaultTenant
}
