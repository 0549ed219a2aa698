// Package httpapi holds what every alpes HTTP API does alike: a request id
// on every request (taken from the client's X-Request-Id when it is safe,
// minted otherwise, echoed in the response, carried in problem answers and
// logs), and the Allow header of a 405.
package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

type ctxKey struct{}

// MaxRequestIDLen bounds an X-Request-Id taken from a client.
const MaxRequestIDLen = 128

// RequestID returns the request id WithRequestID stored in ctx, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WithRequestID takes the client's X-Request-Id when it is a short token of
// safe characters, or mints a UUIDv7, stores it in the request's context and
// echoes it in the response.
func WithRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !ValidRequestID(id) {
			id = uuid.Must(uuid.NewV7()).String()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)))
	})
}

// ValidRequestID reports whether id may be taken from a client: 1 to
// MaxRequestIDLen letters, digits and - _ . : only.
func ValidRequestID(id string) bool {
	if id == "" || len(id) > MaxRequestIDLen {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return false
		}
	}
	return true
}

// methods are the methods a 405's Allow header may list, in its order.
var methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// SetAllow sets, on a 405 answer from a chi router, the Allow header: the
// methods the request's path is routed for (RFC 9110, section 15.5.6).
// chi sets it only with its own 405 handler, not with one of ours.
func SetAllow(w http.ResponseWriter, r *http.Request) {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	var allowed []string
	for _, m := range methods {
		if rctx.Routes.Match(chi.NewRouteContext(), m, path) {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
	}
}
