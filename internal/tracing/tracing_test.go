package tracing

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestFromEnvFollowsTheSpecsConventions checks when the OTEL_* variables
// turn tracing on: off by default, on with otlp or an OTLP endpoint, off
// with none or OTEL_SDK_DISABLED, an error for what alpes cannot export.
func TestFromEnvFollowsTheSpecsConventions(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		on   bool
		err  string
	}{
		{name: "nothing set", env: nil, on: false},
		{name: "otlp exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, on: true},
		{name: "none wins over an endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: false},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, on: false},
		{name: "http/protobuf", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, on: true},
		{name: "grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, err: "http/protobuf only"},
		{name: "zipkin", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, err: "otlp only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := fromEnv(context.Background(), func(k string) string { return c.env[k] })
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want one saying %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(context.Background())
			if tr.Enabled() != c.on {
				t.Fatalf("Enabled() = %v, want %v", tr.Enabled(), c.on)
			}
			if got := Tracer(tr.Provider("alpes-test")) != nil; got != c.on {
				t.Fatalf("Tracer of its provider non-nil = %v, want %v", got, c.on)
			}
		})
	}
}

// TestTracerIsNilWhenOff: components skip tracing work on a nil tracer.
func TestTracerIsNilWhenOff(t *testing.T) {
	var nilTracing *Tracing
	for name, tp := range map[string]trace.TracerProvider{
		"nil": nil, "noop": noop.NewTracerProvider(), "noop pointer": &noop.TracerProvider{},
		"Off": Off().Provider("x"), "nil Tracing": nilTracing.Provider("x"), "New(nil)": New(nil).Provider("x"),
	} {
		if Tracer(tp) != nil {
			t.Errorf("%s: Tracer is not nil", name)
		}
	}
}

// TestProvidersShareTheExporterAndNameTheirService checks that each
// component's spans carry its service.name, that the exporter outlives the
// providers until Shutdown, and that Shutdown ends them all.
func TestProvidersShareTheExporterAndNameTheirService(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := New(exp)
	for _, svc := range []string{ServiceName("bff"), ServiceName("relay")} {
		_, span := Tracer(tr.Provider(svc)).Start(context.Background(), "work "+svc)
		span.End()
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("exported %d spans, want 2", len(spans))
	}
	for _, s := range spans {
		var name string
		for _, kv := range s.Resource.Attributes() {
			if kv.Key == "service.name" {
				name = kv.Value.AsString()
			}
		}
		if s.Name != "work "+name {
			t.Errorf("span %q has service.name %q", s.Name, name)
		}
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if Tracer(tr.Provider("late")) != nil {
		t.Error("a provider made after Shutdown traces")
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}
