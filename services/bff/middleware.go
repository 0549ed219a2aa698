package bff

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/alpes/alpes/internal/httpapi"
	"github.com/alpes/alpes/internal/tracing"
)

// statusRecorder remembers the status and size of a response for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(p)
	s.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog logs one structured line per request once it is answered, and
// turns a panic in a handler into a logged 500.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.writeError(rec, r, fmt.Errorf("panic: %v", v))
			}
			route := chi.RouteContext(r.Context())
			pattern := ""
			if route != nil {
				pattern = route.RoutePattern()
			}
			s.log.LogAttrs(r.Context(), levelFor(rec.status), "http request",
				slog.String("request_id", httpapi.RequestID(r.Context())),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", pattern),
				slog.Int("status", rec.status),
				slog.Int("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
				slog.String("client", s.cfg.ClientKey(r)),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}

// traceRequest runs each request within a server span named after its
// method and route ("POST /v1/orders", "GET /v1/orders/{id}"; the method
// alone when no route matched), a child of the client's W3C trace context
// (traceparent, tracestate) when it sends a valid one, else a root. The
// handlers' work runs in the span's context, so the outbox append of a
// PlaceOrder is its child and carries the trace on. With tracing off it
// makes no span but still puts the client's trace context, if any, in the
// request's context, for the command to carry.
func (s *Server) traceRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := tracing.Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		if s.tracer == nil {
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		ctx, span := s.tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(tracing.HTTPMethod.String(r.Method), tracing.URLPath.String(r.URL.Path)))
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if route := chi.RouteContext(ctx); route != nil && route.RoutePattern() != "" {
				span.SetName(r.Method + " " + route.RoutePattern())
				span.SetAttributes(tracing.HTTPRoute.String(route.RoutePattern()))
			}
			status := rec.status
			if status == 0 {
				status = http.StatusOK // nothing written: net/http answers 200
			}
			span.SetAttributes(tracing.HTTPStatus.Int(status))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			span.End()
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// rateLimit refuses requests beyond the client's token bucket with 429.
func (s *Server) rateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := s.limiter.allow(s.cfg.ClientKey(r), time.Now()); !ok {
			s.writeError(w, r, &rateLimitedError{retryAfterSeconds: retryAfterSeconds(wait)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// remoteIP is the default Config.ClientKey: the IP of the TCP peer.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// levelFor logs answered requests at Info and 5xx at Warn; the cause of a
// 500 has been logged at Error by writeError already.
func levelFor(status int) slog.Level {
	if status >= http.StatusInternalServerError {
		return slog.LevelWarn
	}
	return slog.LevelDebug // one line per request: too many for the default level
}
