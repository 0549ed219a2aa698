package reporting

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/alpes/alpes/internal/httpapi"
)

// problem is an RFC 9457 problem details object. Extensions are extra
// members, such as the known formats of an unknown-format error.
type problem struct {
	Status     int
	Title      string
	Detail     string
	Extensions map[string]any
}

func (p *problem) Error() string { return fmt.Sprintf("%d %s: %s", p.Status, p.Title, p.Detail) }

// badRequest returns a 400 problem for a request the client must change.
func badRequest(title, detail string, extensions map[string]any) error {
	return &problem{Status: http.StatusBadRequest, Title: title, Detail: detail, Extensions: extensions}
}

// writeError answers a failed request with application/problem+json. It is
// the one place that maps errors to statuses: a *problem carries its own,
// ErrOrderNotFound is 404, anything else is a 500 whose cause is logged
// here and not shown to the client.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var p *problem
	switch {
	case errors.As(err, &p):
	case errors.Is(err, ErrOrderNotFound):
		p = &problem{Status: http.StatusNotFound, Title: "Order not found", Detail: err.Error()}
	default:
		log.ErrorContext(r.Context(), "serving request", "method", r.Method, "path", r.URL.Path, "request_id", httpapi.RequestID(r.Context()), "err", err)
		p = &problem{Status: http.StatusInternalServerError, Title: "Internal error",
			Detail: "the request could not be served; the error is logged"}
	}
	body := map[string]any{}
	for k, v := range p.Extensions {
		body[k] = v
	}
	body["type"] = "about:blank"
	body["title"] = p.Title
	body["status"] = p.Status
	body["detail"] = p.Detail
	body["instance"] = r.URL.Path
	if id := httpapi.RequestID(r.Context()); id != "" {
		body["request_id"] = id
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(body)
}

// writeJSON answers with v as JSON and status 200.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
