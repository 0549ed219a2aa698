package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/alpes/alpes/outbox/inbox"
)

// maxLagBody bounds a relay's /v1/lag answer.
const maxLagBody = 1 << 20

// replication is the body of GET /v1/replication: one view of replication
// lag, from every relay source to the bff's own applied messages.
type replication struct {
	Relays    []relayLag             `json:"relays"`
	Consumers []inbox.ProgressReport `json:"consumers"`
}

// relayLag is one relay's GET /v1/lag answer, or why it could not be read.
type relayLag struct {
	URL     string          `json:"url"`
	Sources json.RawMessage `json:"sources,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// getReplication handles GET /v1/replication: the relays' lag, fetched in
// parallel (an unreachable relay is reported, not fatal), and the bff's own
// commit → applied lag per topic.
func (s *Server) getReplication(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.DBTimeout)
	defer cancel()
	rep := replication{
		Relays:    make([]relayLag, len(s.cfg.RelayLagURLs)),
		Consumers: make([]inbox.ProgressReport, 1+len(s.cfg.ProgressURLs)),
	}
	var wg sync.WaitGroup
	for i, u := range s.cfg.RelayLagURLs {
		wg.Go(func() { rep.Relays[i] = s.fetchLag(ctx, u) })
	}
	for i, u := range s.cfg.ProgressURLs {
		wg.Go(func() { rep.Consumers[1+i] = s.fetchProgress(ctx, u) })
	}
	own, err := inbox.ReadProgressReport(ctx, Subscription, s.cfg.DB)
	wg.Wait()
	if err != nil {
		return err
	}
	rep.Consumers[0] = own
	writeJSON(w, http.StatusOK, "application/json", rep)
	return nil
}

// fetchProgress reads another service's GET /v1/progress.
func (s *Server) fetchProgress(ctx context.Context, u string) inbox.ProgressReport {
	out := inbox.ProgressReport{URL: u, Topics: []inbox.TopicProgress{}}
	body, status, err := s.get(ctx, u, "")
	switch {
	case err != nil:
		out.Error = err.Error()
	case status != http.StatusOK:
		out.Error = fmt.Sprintf("status %d", status)
	case json.Unmarshal(body, &out) != nil:
		out.Error = "not a progress report"
	}
	out.URL = u
	return out
}

// get fetches u with an optional bearer token; the body is bounded.
func (s *Server) get(ctx context.Context, u, token string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.upstream.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLagBody))
	return body, resp.StatusCode, err
}

// fetchLag reads one relay's GET /v1/lag.
func (s *Server) fetchLag(ctx context.Context, u string) relayLag {
	out := relayLag{URL: u}
	body, status, err := s.get(ctx, u, s.cfg.RelayToken)
	var report struct {
		Sources json.RawMessage `json:"sources"`
	}
	switch {
	case err != nil:
		out.Error = err.Error()
	case status != http.StatusOK:
		out.Error = fmt.Sprintf("status %d", status)
	case json.Unmarshal(body, &report) != nil || len(report.Sources) == 0:
		out.Error = "not a lag report"
	default:
		out.Sources = report.Sources
	}
	return out
}
