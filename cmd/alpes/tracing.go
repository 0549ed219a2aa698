package main

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/tracing"
)

// tracingFlushTimeout bounds how long a stopping command waits for its last
// spans to reach the collector.
const tracingFlushTimeout = 5 * time.Second

// startTracing configures tracing from the OTEL_* environment
// (tracing.FromEnv: off unless it names an OTLP exporter or endpoint) and
// returns it with a stop that flushes what it holds, within
// tracingFlushTimeout, logging a failure. Every long-running command calls
// it once.
func startTracing(ctx context.Context, e env) (*tracing.Tracing, func(), error) {
	t, err := tracing.FromEnv(ctx)
	if err != nil {
		return nil, nil, err
	}
	if t.Enabled() {
		e.log.Info("tracing on: exporting spans over OTLP/HTTP (OTEL_EXPORTER_OTLP_* settings)")
	}
	stop := func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tracingFlushTimeout)
		defer cancel()
		if err := t.Shutdown(fctx); err != nil {
			e.log.Warn("flushing traces", "err", err)
		}
	}
	return t, stop, nil
}

// componentTracing is startTracing for a process that runs one component:
// its tracer provider, with service.name tracing.ServiceName(component).
func componentTracing(ctx context.Context, e env, component string) (trace.TracerProvider, func(), error) {
	t, stop, err := startTracing(ctx, e)
	if err != nil {
		return nil, nil, err
	}
	return t.Provider(tracing.ServiceName(component)), stop, nil
}
