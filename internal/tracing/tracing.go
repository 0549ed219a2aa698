// Package tracing is alpes's OpenTelemetry foundation: the tracer providers
// of a process, configured by the standard OTEL_* environment variables and
// exporting over OTLP/HTTP, off unless those variables ask for it; and the
// few helpers every traced component shares (Tracer, Propagator, the
// attribute names).
//
// Library code never reaches for the global provider: each component takes
// a trace.TracerProvider in its Config, nil meaning no tracing, and asks
// Tracer for its tracer once, when it is built. Tracer returns nil for a nil
// or no-op provider, so a component tests one pointer per message and does
// no tracing work at all (no context extracted, nothing allocated) while
// tracing is off.
//
// docs/tracing.md lists the spans and how to turn tracing on.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of every alpes tracer.
const ScopeName = "github.com/alpes/alpes"

// Attribute keys of alpes's spans, after the OpenTelemetry semantic
// conventions for messaging and HTTP where they have one.
const (
	MessagingSystem      = attribute.Key("messaging.system")              // "pulsar"
	MessagingDestination = attribute.Key("messaging.destination.name")    // the full topic
	MessagingOperation   = attribute.Key("messaging.operation.type")      // "send" or "process"
	MessagingMessageID   = attribute.Key("messaging.message.id")          // alpes-event-id
	MessagingKey         = attribute.Key("messaging.pulsar.message.key")  // the aggregate id
	MessagingConsumer    = attribute.Key("messaging.consumer.group.name") // the subscription
	EventType            = attribute.Key("alpes.event.type")              // alpes-type
	InboxOutcome         = attribute.Key("alpes.inbox.outcome")           // applied, skipped, parked, dead-lettered
	HTTPMethod           = attribute.Key("http.request.method")           // GET, POST…
	HTTPRoute            = attribute.Key("http.route")                    // /v1/orders/{id}
	HTTPStatus           = attribute.Key("http.response.status_code")     // 202
	URLPath              = attribute.Key("url.path")                      // /v1/orders
	PulsarSystem         = "pulsar"                                       // the value of MessagingSystem
)

// Propagator is how alpes carries trace context: W3C Trace Context, the
// traceparent and tracestate headers (and message properties), whatever
// the global propagator is.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracer returns tp's alpes tracer, or nil when tp is nil or a no-op
// provider (go.opentelemetry.io/otel/trace/noop's): tracing is off, and
// the caller skips its tracing work altogether. Call it once per
// component, not per message.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return nil
	}
	return tp.Tracer(ScopeName)
}

// Tracing makes the tracer providers of one process, one per component
// (each with its own service.name), all exporting through one exporter.
// The zero value and a nil *Tracing are off: every provider is a no-op.
// Safe for concurrent use.
type Tracing struct {
	exporter sdktrace.SpanExporter // nil: off
	sync     bool                  // export each span as it ends (New)
	attrs    []attribute.KeyValue  // from OTEL_RESOURCE_ATTRIBUTES

	mu        sync.Mutex
	providers []*sdktrace.TracerProvider
	closed    bool
}

// Off is a Tracing that traces nothing.
func Off() *Tracing { return &Tracing{} }

// New returns a Tracing that exports every span to exp as soon as it ends
// (a synchronous span processor): for tests, with
// go.opentelemetry.io/otel/sdk/trace/tracetest's in-memory exporter. A nil
// exp is off.
func New(exp sdktrace.SpanExporter) *Tracing {
	return &Tracing{exporter: exp, sync: true}
}

// FromEnv configures tracing from the OpenTelemetry environment variables,
// as the specification names them:
//
//   - OTEL_SDK_DISABLED=true turns tracing off whatever else is set.
//   - OTEL_TRACES_EXPORTER: "otlp" turns tracing on, "none" off; any other
//     exporter is an error. Unset, tracing is on exactly when an OTLP
//     endpoint is set: OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT. So tracing is off by default.
//   - OTEL_EXPORTER_OTLP_PROTOCOL and OTEL_EXPORTER_OTLP_TRACES_PROTOCOL:
//     only http/protobuf (the default) is supported.
//   - The OTLP/HTTP exporter reads its own variables:
//     OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT (default http://localhost:4318),
//     _HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE, _CLIENT_CERTIFICATE
//     and _CLIENT_KEY.
//   - The SDK reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
//     (default parentbased_always_on) and OTEL_BSP_* (the batch span
//     processor's delay, queue and batch sizes, export timeout).
//   - OTEL_RESOURCE_ATTRIBUTES adds resource attributes to every
//     component's. service.name is each component's own (alpes-bff,
//     alpes-relay…: see Provider), so OTEL_SERVICE_NAME is not used: one
//     process may run several components (alpes dev).
//
// OTEL_PROPAGATORS is not read: alpes propagates W3C Trace Context.
// The exporter is created without connecting; spans that cannot be
// delivered are dropped, never blocking the components.
func FromEnv(ctx context.Context) (*Tracing, error) {
	return fromEnv(ctx, os.Getenv)
}

func fromEnv(ctx context.Context, getenv func(string) string) (*Tracing, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return Off(), nil
	}
	on := getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "":
	case "otlp":
		on = true
	case "none":
		on = false
	default:
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: alpes exports traces with otlp only (or none)", exp)
	}
	if !on {
		return Off(), nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := strings.TrimSpace(getenv(name)); p != "" {
			if p != "http/protobuf" {
				return nil, fmt.Errorf("%s=%s: alpes exports OTLP over http/protobuf only", name, p)
			}
			break // the traces-specific one wins
		}
	}
	env, err := resource.New(ctx, resource.WithFromEnv())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("reading OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating the OTLP trace exporter: %w", err)
	}
	return &Tracing{exporter: exp, attrs: env.Attributes()}, nil
}

// ServiceName is the service.name of a component's spans, by convention:
// alpes-bff, alpes-orders, alpes-payments, alpes-reporting, alpes-relay.
func ServiceName(component string) string { return "alpes-" + component }

// Enabled reports whether t exports spans.
func (t *Tracing) Enabled() bool { return t != nil && t.exporter != nil }

// Provider returns the tracer provider of one component, whose spans carry
// service.name = service (ServiceName of the component). Off, it is a
// no-op provider, for which Tracer returns nil. Providers made after
// Shutdown are no-ops too.
func (t *Tracing) Provider(service string) trace.TracerProvider {
	if !t.Enabled() {
		return noop.NewTracerProvider()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return noop.NewTracerProvider()
	}
	attrs := append(append([]attribute.KeyValue{}, t.attrs...), attribute.String("service.name", service))
	res := resource.NewWithAttributes("", attrs...)
	// Each provider shuts its processor down, and a processor its exporter:
	// the shared exporter is shut down once, by Shutdown, after them all.
	exp := sharedExporter{t.exporter}
	var proc sdktrace.SpanProcessor
	if t.sync {
		proc = sdktrace.NewSimpleSpanProcessor(exp)
	} else {
		proc = sdktrace.NewBatchSpanProcessor(exp)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSpanProcessor(proc))
	t.providers = append(t.providers, tp)
	return tp
}

// Shutdown ends every provider Provider made, exporting the spans they
// still hold, then the exporter; within ctx. It is a no-op when off, and
// after the first call.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	providers := t.providers
	t.mu.Unlock()
	var errs []error
	for _, tp := range providers {
		if err := tp.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := t.exporter.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("flushing traces: %w", err)
	}
	return nil
}

// sharedExporter is an exporter that several processors share: shutting
// one processor down leaves it open.
type sharedExporter struct{ sdktrace.SpanExporter }

func (sharedExporter) Shutdown(context.Context) error { return nil }
