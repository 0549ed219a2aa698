package bff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/alpes/alpes/internal/httpapi"
)

// Errors the handlers return; writeError maps them to HTTP statuses.
var (
	// errNotFound: the addressed resource does not exist (404).
	errNotFound = errors.New("not found")
	// errTooLarge: the request body exceeds Config.MaxBodyBytes (413).
	errTooLarge = errors.New("request body too large")
	// errKeyReused: an Idempotency-Key came back with a different request (422).
	errKeyReused = errors.New("idempotency key reused with a different request")
	// errKeyInFlight: a request with this Idempotency-Key is still being processed (409).
	errKeyInFlight = errors.New("a request with this idempotency key is in progress")
	// errOutcomeUnknown: a write reached the database and its answer did
	// not come back, so it may have committed. Not a 503, which promises
	// that nothing was written; the same Idempotency-Key tells which.
	errOutcomeUnknown = errors.New("the order may have been stored; retry with the same Idempotency-Key to learn its outcome")
	// errUnsupportedMedia: the body is not JSON (415).
	errUnsupportedMedia = errors.New("unsupported media type")
	// errMethodNotAllowed: the route exists, but not for this method (405).
	errMethodNotAllowed = errors.New("method not allowed")
)

// invalidError is a client error in the request (400), with per-field detail.
type invalidError struct {
	detail string
	fields []fieldError
	parts  []string // the detail of each problem, when there are several
}

// fieldError names one invalid field by its JSON pointer-like path.
type fieldError struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

func (e *invalidError) Error() string { return e.detail }

// invalid returns a 400 error with one field's detail; field may be empty.
func invalid(field, format string, args ...any) *invalidError {
	reason := fmt.Sprintf(format, args...)
	e := &invalidError{detail: "the request is invalid"}
	if field == "" {
		e.detail = reason
	} else {
		e.fields = []fieldError{{Field: field, Reason: reason}}
		e.detail = field + ": " + reason
	}
	return e
}

// invalidFields gathers what is wrong with the fields of one request, so
// that a 400 lists every invalid field, not only the first.
type invalidFields struct {
	fields  []fieldError
	details []string
	other   error // an error that is not an *invalidError, returned as is
}

// add records err: nil is ignored, an *invalidError adds its fields, and
// any other error is kept to be returned unchanged.
func (f *invalidFields) add(err error) {
	if err == nil {
		return
	}
	var inv *invalidError
	if !errors.As(err, &inv) {
		if f.other == nil {
			f.other = err
		}
		return
	}
	f.fields = append(f.fields, inv.fields...)
	if len(inv.parts) > 0 {
		f.details = append(f.details, inv.parts...)
	} else {
		f.details = append(f.details, inv.detail)
	}
}

// err is nil when nothing was added, and otherwise one *invalidError that
// lists every field added, its detail joining theirs.
func (f *invalidFields) err() error {
	switch {
	case f.other != nil:
		return f.other
	case len(f.details) == 0:
		return nil
	case len(f.details) == 1:
		return &invalidError{detail: f.details[0], fields: f.fields}
	}
	return &invalidError{detail: fmt.Sprintf("%d problems: %s", len(f.details), strings.Join(f.details, "; ")), fields: f.fields, parts: f.details}
}

// rateLimitedError: the client exceeded its rate (429).
type rateLimitedError struct{ retryAfterSeconds int }

func (e *rateLimitedError) Error() string { return "rate limit exceeded" }

// problem is an RFC 9457 problem details body.
type problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []fieldError `json:"errors,omitempty"`
}

// writeError is the one place where errors become HTTP responses. Errors it
// does not know are logged with the request id and answered with a bare 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	p := problem{Instance: r.URL.Path, RequestID: httpapi.RequestID(r.Context())}
	var inv *invalidError
	var rl *rateLimitedError
	var nr *notReadyError
	switch {
	case errors.As(err, &nr):
		p.Status, p.Detail = http.StatusServiceUnavailable, nr.Error()
	case errors.As(err, &inv):
		p.Status, p.Detail, p.Errors = http.StatusBadRequest, inv.detail, inv.fields
	case errors.Is(err, errTooLarge):
		p.Status, p.Detail = http.StatusRequestEntityTooLarge, fmt.Sprintf("the body exceeds %d bytes", s.cfg.MaxBodyBytes)
	case errors.Is(err, errNotFound):
		p.Status = http.StatusNotFound
	case errors.Is(err, errMethodNotAllowed):
		p.Status = http.StatusMethodNotAllowed
	case errors.Is(err, errKeyReused):
		p.Status, p.Detail = http.StatusUnprocessableEntity, err.Error()
	case errors.Is(err, errKeyInFlight):
		p.Status, p.Detail = http.StatusConflict, err.Error()
	case errors.Is(err, errUpstream):
		p.Status, p.Detail = http.StatusBadGateway, "the reporting service did not answer"
	case errors.Is(err, errNotConfigured):
		p.Status, p.Detail = http.StatusServiceUnavailable, "this bff has no reporting service configured"
	case errors.Is(err, errUnsupportedMedia):
		p.Status, p.Detail = http.StatusUnsupportedMediaType, "send application/json"
	case errors.As(err, &rl):
		p.Status = http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(rl.retryAfterSeconds))
	case r.Context().Err() != nil:
		// The client went away (the database call then fails too): nobody
		// reads the answer, and it is not the database's fault.
		p.Status = 499
	case errors.Is(err, errOutcomeUnknown):
		p.Status, p.Detail = http.StatusInternalServerError, errOutcomeUnknown.Error()
		w.Header().Set("Retry-After", "1")
		s.log.WarnContext(r.Context(), "outcome of a write unknown", "request_id", p.RequestID, "err", err)
	case unreachable(err):
		p.Status, p.Detail = http.StatusServiceUnavailable, "the database is unreachable; retry later"
		w.Header().Set("Retry-After", "1")
		s.log.WarnContext(r.Context(), "database unreachable", "request_id", p.RequestID, "err", err)
	case outOfResources(err):
		// A full disk, memory or connection table: nothing was written, and
		// the same request may succeed once the operator has made room.
		p.Status, p.Detail = http.StatusServiceUnavailable, "the database is out of resources (disk, memory or connections); retry later"
		w.Header().Set("Retry-After", "5")
		s.log.ErrorContext(r.Context(), "database out of resources", "request_id", p.RequestID, "err", err)
	default:
		p.Status = http.StatusInternalServerError
		s.log.ErrorContext(r.Context(), "handling request", "request_id", p.RequestID, "err", err)
	}
	p.Type = "about:blank"
	p.Title = http.StatusText(p.Status)
	if p.Title == "" {
		p.Title = "Client Closed Request"
	}
	writeJSON(w, p.Status, "application/problem+json", p)
}

// mayHaveCommitted reports whether a write in one implicit transaction (a
// batch) that failed with err may nevertheless have committed, so that a
// 503, which promises nothing was written, would be a lie. It certainly did
// not commit when none of its statements was sent: pgconn.SafeToRetry, or
// pgx failed while preparing them, before sending the batch
// (pgx.ErrPreprocessingBatch); or when Postgres refused a statement with an
// ERROR, which rolls the whole batch back. Anything else may have come
// after the commit: a cut connection, a timeout, and an error that ended
// the session (sessionEnded), such as FATAL 57P01 admin_shutdown, which
// says the session is over, not whether the commit happened first.
func mayHaveCommitted(err error) bool {
	var pe *pgconn.PgError
	var prep pgx.ErrPreprocessingBatch
	switch {
	case pgconn.SafeToRetry(err), errors.As(err, &prep):
		return false
	case errors.As(err, &pe):
		return sessionEnded(pe)
	}
	return true
}

// sessionEnded reports whether pe ended the session rather than failed a
// statement: severity FATAL or PANIC, or a SQLSTATE of connection exception
// (class 08) or of a server shutting down (57P01 admin_shutdown, 57P02
// crash_shutdown, 57P03 cannot_connect_now), whatever severity a server or
// pooler gave it.
func sessionEnded(pe *pgconn.PgError) bool {
	severity := pe.SeverityUnlocalized
	if severity == "" {
		severity = pe.Severity // servers before 9.6
	}
	switch {
	case severity == "FATAL", severity == "PANIC":
		return true
	case strings.HasPrefix(pe.Code, "08"), pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03":
		return true
	}
	return false
}

// unreachable reports whether err means the database could not be reached
// or stopped serving: a failed connect, a network error, a connection cut
// mid-answer, a timeout while acquiring a connection, a closed pool, or a
// server shutting down. For a write, placeOrder first sorts out the errors
// after which the write may have committed (mayHaveCommitted,
// errOutcomeUnknown), so a 503 for a write means it did not.
func unreachable(err error) bool {
	var ce *pgconn.ConnectError
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), errors.Is(err, puddle.ErrClosedPool):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true // the server went away mid-answer, as in a crash
	case errors.As(err, &pe):
		// Class 08: connection exception; 57P01-57P03: shutdown, cannot connect now.
		return len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03")
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err):
		return true
	}
	return false
}

// outOfResources reports whether Postgres refused for want of resources:
// SQLSTATE class 53 (disk full, out of memory, too many connections).
func outOfResources(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && strings.HasPrefix(pe.Code, "53")
}

// writeJSON writes v as a JSON response with status and content type.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the response", http.StatusInternalServerError)
		return
	}
	writeBody(w, status, contentType, body)
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
