package bff

import (
	_ "embed"
	"net/http"
)

// lagPage is GET /lag: a page a person can leave open while the system
// runs. Its script asks GET /v1/replication every second, keeps the last
// five minutes in the browser, and draws per relay source the WAL bytes and
// seconds not yet published, per consumer and topic the commit → applied
// lag of the newest message, and the orders per second (the PlaceOrder
// commands the relay published from the bff's outbox). It loads nothing
// from elsewhere.
//
//go:embed lagpage.html
var lagPage []byte

// serveLagPage handles GET /lag.
func (s *Server) serveLagPage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:")
	w.Write(lagPage)
}
