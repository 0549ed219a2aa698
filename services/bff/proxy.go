package bff

import (
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/alpes/alpes/internal/httpapi"
)

// errUpstream: a service the bff forwards to failed or is unreachable (502).
var errUpstream = errors.New("upstream unavailable")

// errNotConfigured: the route needs a Config URL that is not set (503).
var errNotConfigured = errors.New("not configured")

// newReportingProxy returns a reverse proxy to the reporting service's HTTP
// API at base, or nil when base is empty. It forwards the path and query
// unchanged, with the request id, and streams the answer back (reports can
// be large). A failure to reach reporting becomes a 502 problem.
func (s *Server) newReportingProxy(base string) (*httputil.ReverseProxy, error) {
	if base == "" {
		return nil, nil
	}
	target, err := url.Parse(base)
	if err != nil || (target.Scheme != "http" && target.Scheme != "https") || target.Host == "" {
		return nil, errors.New("reporting url " + base + ": want http(s)://host[:port]")
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("X-Request-Id", httpapi.RequestID(pr.In.Context()))
			pr.Out.Header.Del("Cookie")
			pr.Out.Header.Del("Authorization")
		},
		Transport: s.upstream.Transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("forwarding to reporting", "request_id", httpapi.RequestID(r.Context()), "err", err)
			s.writeError(w, r, errUpstream)
		},
	}, nil
}

// forwardToReporting handles the routes reporting answers:
// GET /v1/orders/{id}/timeline and GET /v1/reports/orders?format=….
func (s *Server) forwardToReporting(w http.ResponseWriter, r *http.Request) error {
	if s.reporting == nil {
		return errNotConfigured
	}
	if id := chi.URLParam(r, "id"); id != "" {
		if _, err := uuid.Parse(id); err != nil || strings.ContainsAny(id, "{}") {
			return invalid("id", "must be a UUID")
		}
	}
	s.reporting.ServeHTTP(w, r)
	return nil
}
