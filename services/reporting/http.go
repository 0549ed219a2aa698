package reporting

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/alpes/alpes/internal/httpapi"
	"github.com/alpes/alpes/outbox/inbox"
)

// DefaultFormat is the report's format when the request names none.
const DefaultFormat = "json"

// reportBuffer is how many bytes of a report are gathered before they are
// written to the connection.
const reportBuffer = 32 << 10

// Handler returns reporting's HTTP API:
//
//	GET /v1/reports/orders?format=csv|json|ndjson|html[&from=…&to=…]
//	GET /v1/reports/formats
//	GET /v1/orders/{id}/timeline
//	GET /healthz, /readyz, /metrics
//
// Errors are application/problem+json. The handler is safe for concurrent
// use and may be served by any number of servers.
func (s *Service) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(httpapi.WithRequestID, s.metrics.durations, middleware.Recoverer)
	r.Get("/v1/reports/orders", s.serveReport)
	r.Get("/v1/reports/formats", s.serveFormats)
	r.Get("/v1/orders/{id}/timeline", s.serveTimeline)
	r.Method(http.MethodGet, "/v1/progress", inbox.ProgressHandler(Subscription, s.cfg.DB))
	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, map[string]string{"status": "ok"}) })
	r.Get("/readyz", s.serveReady)
	r.Handle("/metrics", s.metrics)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, s.log, &problem{Status: http.StatusNotFound, Title: "Not found", Detail: "no such resource: " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpapi.SetAllow(w, r)
		writeError(w, r, s.log, &problem{Status: http.StatusMethodNotAllowed, Title: "Method not allowed", Detail: r.Method + " is not allowed on " + r.URL.Path})
	})
	return r
}

// serveReport streams the orders report in the requested format. Until the
// first bytes leave, a failure is answered with a problem; after that the
// status is sent, so a failure aborts the connection and the client sees a
// truncated body, never a report that looks complete.
func (s *Service) serveReport(w http.ResponseWriter, r *http.Request) {
	format, window, err := s.reportRequest(r)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", format.ContentType())
	h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="orders.%s"`, format.Name()))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")

	sent := &sentWriter{w: w}
	buf := bufio.NewWriterSize(sent, reportBuffer)
	out := format.NewWriter(buf)
	rows := 0
	err = streamReport(r.Context(), s.db, window, s.cfg.FetchSize, func(row Row) error {
		rows++
		return out.WriteRow(row)
	})
	if err == nil {
		if err = out.Finish(); err == nil {
			err = buf.Flush()
		}
	}
	s.metrics.report(format.Name(), rows, err)
	switch {
	case err == nil:
	case sent.n == 0 && r.Context().Err() == nil:
		for k := range h {
			delete(h, k)
		}
		writeError(w, r, s.log, err)
	default:
		s.log.WarnContext(r.Context(), "report aborted", "format", format.Name(), "rows", rows, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// reportRequest reads the report's format and window from the query.
func (s *Service) reportRequest(r *http.Request) (Format, Window, error) {
	q := r.URL.Query()
	name := q.Get("format")
	if name == "" {
		name = DefaultFormat
	}
	format, ok := s.formats.Lookup(strings.ToLower(name))
	if !ok {
		known := s.formats.Names()
		return nil, Window{}, badRequest("Unknown report format",
			fmt.Sprintf("format %q is not one of %s", name, strings.Join(known, ", ")),
			map[string]any{"formats": known})
	}
	var win Window
	for _, b := range []struct {
		param string
		t     *time.Time
	}{{"from", &win.From}, {"to", &win.To}} {
		v := q.Get(b.param)
		if v == "" {
			continue
		}
		// A "+" offset left unescaped in a query string arrives as a space.
		t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
		if err != nil {
			return nil, win, badRequest("Invalid time", fmt.Sprintf("%s=%q: want an RFC 3339 time such as 2026-11-26T08:00:00Z", b.param, v), nil)
		}
		*b.t = t
	}
	if !win.From.IsZero() && !win.To.IsZero() && !win.From.Before(win.To) {
		return nil, win, badRequest("Empty window", "from must be before to", nil)
	}
	return format, win, nil
}

// formatInfo describes a format in the list of formats.
type formatInfo struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
}

func (s *Service) serveFormats(w http.ResponseWriter, r *http.Request) {
	var list []formatInfo
	for _, f := range s.formats.Formats() {
		list = append(list, formatInfo{Name: f.Name(), ContentType: f.ContentType()})
	}
	writeJSON(w, map[string]any{"default": DefaultFormat, "formats": list})
}

func (s *Service) serveTimeline(w http.ResponseWriter, r *http.Request) {
	raw := chi.URLParam(r, "id")
	id, err := uuid.Parse(raw)
	if err != nil {
		writeError(w, r, s.log, fmt.Errorf("%w: %q is not an order id (a UUID)", ErrOrderNotFound, raw))
		return
	}
	tl, err := readTimeline(r.Context(), s.db, id)
	if err != nil {
		writeError(w, r, s.log, err)
		return
	}
	writeJSON(w, tl)
}

// serveReady answers 200 when the service can do its work now: the
// database answers a ping and, when the service consumes, its consumer is
// subscribed and the broker answers (inbox's Consumer.Ready), all within
// inbox.ReadyTimeout; else 503 with a problem saying why.
func (s *Service) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), inbox.ReadyTimeout)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		writeError(w, r, s.log, &problem{Status: http.StatusServiceUnavailable, Title: "Not ready",
			Detail: "the database does not answer: " + err.Error()})
		return
	}
	if s.consumer != nil {
		if err := s.consumer.Ready(ctx); err != nil {
			writeError(w, r, s.log, &problem{Status: http.StatusServiceUnavailable, Title: "Not ready", Detail: err.Error()})
			return
		}
	}
	writeJSON(w, map[string]string{"status": "ready"})
}

// sentWriter counts the bytes written through to the response, so a failed
// report knows whether its status has left.
type sentWriter struct {
	w http.ResponseWriter
	n int64
}

func (s *sentWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}
