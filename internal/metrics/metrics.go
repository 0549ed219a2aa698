// Package metrics is what every alpes process does alike for Prometheus: a
// registry of its own (never the global one) holding the Go runtime's and
// the process's collectors, the handler that serves it at /metrics, and the
// latency histogram of an HTTP API's requests by route and status code.
//
// Names follow Prometheus's conventions: alpes_<component>_<what>_<unit>,
// base units (seconds, bytes), counters ending in _total.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a new registry holding the Go runtime's collector
// (go_*) and the process's (process_*: CPU, memory, open files, start
// time). Each process, and each component of `alpes dev`, has its own.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg's metrics in the format the scraper asks for (text or
// OpenMetrics). A collector that fails leaves its metrics out and the rest
// is served: one unreachable database does not blank the whole scrape. The
// handler counts its own scrapes and errors in reg
// (promhttp_metric_handler_*).
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:      reg,
		ErrorHandling: promhttp.ContinueOnError,
	}))
}

// UnmatchedRoute is the route label of a request no route matched (a 404,
// or a 405 on a path routed for other methods), so that a client probing
// random paths cannot create label values.
const UnmatchedRoute = "unmatched"

// HTTPDurations registers, in reg, the histogram
// <prefix>http_request_duration_seconds{method, route, code} and returns
// the middleware that observes it: from the request's arrival at the
// middleware until its handler returns, labelled with the chi route pattern
// that served it (e.g. /v1/orders/{id}, never the raw path; UnmatchedRoute
// when none matched) and the response's status code. Use it on a chi
// router (Router.Use), whose routing fills the pattern in. The response
// writer handed on keeps http.Flusher, http.Hijacker and Unwrap.
func HTTPDurations(reg prometheus.Registerer, prefix string) func(http.Handler) http.Handler {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    prefix + "http_request_duration_seconds",
		Help:    "Time from a request's arrival until its handler returned, by method, chi route pattern and status code.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"method", "route", "code"})
	reg.MustRegister(h)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				route := UnmatchedRoute
				if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
					route = rc.RoutePattern()
				}
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK // nothing written: net/http answers 200
				}
				h.WithLabelValues(method(r.Method), route, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
			}()
			next.ServeHTTP(ww, r)
		})
	}
}

// method returns m when it is a standard method, else "other": the label
// takes no value a client invents.
func method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
