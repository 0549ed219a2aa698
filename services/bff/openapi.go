package bff

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3 description of the public API, hand-written.
//
//go:embed openapi.json
var openAPIDoc []byte

// serveOpenAPI handles GET /openapi.json.
func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeBody(w, http.StatusOK, "application/json", openAPIDoc)
}
