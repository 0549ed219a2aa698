package bff

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/alpes/alpes/internal/httpapi"
)

// maxIdempotencyKeyLen is the longest Idempotency-Key accepted (the
// idempotency_keys column allows 255).
const maxIdempotencyKeyLen = 255

// postOrder handles POST /v1/orders.
func (s *Server) postOrder(w http.ResponseWriter, r *http.Request) error {
	key, err := idempotencyKey(r)
	if err != nil {
		return err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return errUnsupportedMedia
		}
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	req, err := decodeOrderRequest(body)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.DBTimeout)
	defer cancel()
	resp, err := s.store.placeOrder(ctx, key, canonicalHash(req), req, commandHeaders(r))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/orders/"+resp.body.OrderID)
	if resp.replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, resp.status, "application/json", resp.body)
	return nil
}

// idempotencyKey returns the request's Idempotency-Key: required, 1 to 255
// printable ASCII characters. The IETF draft makes the header a structured
// field string ("…", quoted); a quoted key is unquoted, so clients that
// quote and clients that do not name the same key the same way.
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) != 1 || vals[0] == "" {
		return "", invalid("Idempotency-Key", "exactly one Idempotency-Key header is required")
	}
	key := vals[0]
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
		if key == "" || strings.ContainsAny(key, `"\`) {
			return "", invalid("Idempotency-Key", "a quoted key must be a plain non-empty string")
		}
	}
	if len(key) > maxIdempotencyKeyLen {
		return "", invalid("Idempotency-Key", "must be at most %d characters", maxIdempotencyKeyLen)
	}
	for _, c := range []byte(key) {
		if c < 0x21 || c > 0x7e {
			return "", invalid("Idempotency-Key", "must be printable ASCII without spaces")
		}
	}
	return key, nil
}

// readBody reads the whole body, refusing one over Config.MaxBodyBytes
// (declared or, when chunked, as read) with errTooLarge.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, errTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, errTooLarge
	case err != nil:
		return nil, invalid("", "reading the body: %v", err)
	}
	return body, nil
}

// commandHeaders returns the headers the command travels with: the
// request's id. Its trace context is the outbox writer's to add, from the
// request's context (traceRequest).
func commandHeaders(r *http.Request) map[string]string {
	h := map[string]string{}
	if id := httpapi.RequestID(r.Context()); id != "" {
		h["request-id"] = id
	}
	return h
}
