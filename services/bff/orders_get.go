package bff

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
)

// getOrder handles GET /v1/orders/{id}[?wait=10s]. With wait, it answers as
// soon as the order is confirmed or rejected, or with the current view when
// wait passes, the client leaves or the server shuts down.
func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) error {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return invalid("id", "must be a UUID")
	}
	wait, err := s.waitParam(r)
	if err != nil {
		return err
	}
	var wake <-chan string
	if wait > 0 {
		// Subscribe before the first read, so no change slips in between.
		ch, done := s.notify.subscribe(id.String())
		defer done()
		wake = ch
	}
	view, err := s.readView(r.Context(), id.String())
	if err != nil {
		return err
	}
	if wait > 0 && !terminal(view.Status) {
		view, err = s.awaitTerminal(r, id.String(), view, wait, wake)
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, "application/json", view)
	return nil
}

// awaitTerminal takes the view sent with each change of the order (reading
// it again when none came, and every PollInterval), until it is terminal or
// the wait ends; it returns the last view it had.
func (s *Server) awaitTerminal(r *http.Request, id string, view orderView, wait time.Duration, wake <-chan string) (orderView, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	for !terminal(view.Status) {
		select {
		case <-r.Context().Done():
			return view, r.Context().Err()
		case <-s.stopping:
			return view, nil
		case <-deadline.C:
			return view, nil
		case sent := <-wake:
			if sent != "" {
				next, err := decodeView(sent)
				if err != nil {
					return view, err
				}
				view = next
				continue
			}
		case <-poll.C:
		}
		next, err := s.readView(r.Context(), id)
		if err != nil {
			return view, err
		}
		view = next
	}
	return view, nil
}

func (s *Server) readView(ctx context.Context, id string) (orderView, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.DBTimeout)
	defer cancel()
	return s.store.orderView(ctx, id)
}

// waitParam parses ?wait= as a Go duration ("10s", "500ms") or whole
// seconds ("10"), from 0 to Config.MaxWait.
func (s *Server) waitParam(r *http.Request) (time.Duration, error) {
	q := r.URL.Query()
	if !q.Has("wait") {
		return 0, nil
	}
	raw := q.Get("wait")
	d, err := time.ParseDuration(raw)
	if err != nil {
		d, err = time.ParseDuration(raw + "s")
	}
	if err != nil || d < 0 || d > s.cfg.MaxWait || len(q["wait"]) > 1 {
		return 0, invalid("wait", "must be one duration from 0s to %s, such as 10s", s.cfg.MaxWait)
	}
	return d, nil
}

// listProducts handles GET /v1/products, from the product replica.
func (s *Server) listProducts(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.DBTimeout)
	defer cancel()
	ps, err := s.store.products(ctx)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []product{}
	}
	writeJSON(w, http.StatusOK, "application/json", map[string]any{"products": ps})
	return nil
}
