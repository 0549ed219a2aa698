package bff

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/alpes/alpes/services/inbox"
)

// maxLagBody bounds a relay's /v1/lag answer.
const maxLagBody = 1 << 20

// replication is the body of GET /v1/replication: one view of replication
// lag, from every relay source to the bff's own applied messages.
type replication struct {
	Relays    []relayLag    `json:"relays"`
	Consumers []consumerLag `json:"consumers"`
}

// relayLag is one relay's GET /v1/lag answer, or why it could not be read.
type relayLag struct {
	URL     string          `json:"url"`
	Sources json.RawMessage `json:"sources,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// consumerLag is one consuming service's apply_progress.
type consumerLag struct {
	Service string         `json:"service"`
	Topics  []topicApplied `json:"topics"`
}

// topicApplied is how far a service applied one topic.
type topicApplied struct {
	Topic           string    `json:"topic"`
	LastEventID     string    `json:"last_event_id"`
	LastCommittedAt time.Time `json:"last_committed_at"`
	LastAppliedAt   time.Time `json:"last_applied_at"`
	AppliedCount    int64     `json:"applied_count"`
	LagSeconds      float64   `json:"lag_seconds"`
}

// getReplication handles GET /v1/replication: the relays' lag, fetched in
// parallel (an unreachable relay is reported, not fatal), and the bff's own
// commit → applied lag per topic.
func (s *Server) getReplication(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.DBTimeout)
	defer cancel()
	rep := replication{Relays: make([]relayLag, len(s.cfg.RelayLagURLs)), Consumers: []consumerLag{}}
	var wg sync.WaitGroup
	for i, u := range s.cfg.RelayLagURLs {
		wg.Go(func() { rep.Relays[i] = s.fetchLag(ctx, u) })
	}
	progress, err := inbox.ReadProgress(ctx, s.cfg.DB)
	wg.Wait()
	if err != nil {
		return err
	}
	own := consumerLag{Service: Subscription, Topics: []topicApplied{}}
	for _, p := range progress {
		own.Topics = append(own.Topics, topicApplied{
			Topic: p.Topic, LastEventID: p.LastEventID, LastCommittedAt: p.LastCommittedAt.UTC(),
			LastAppliedAt: p.LastAppliedAt.UTC(), AppliedCount: p.AppliedCount, LagSeconds: p.Lag().Seconds(),
		})
	}
	rep.Consumers = append(rep.Consumers, own)
	writeJSON(w, http.StatusOK, "application/json", rep)
	return nil
}

// fetchLag reads one relay's GET /v1/lag.
func (s *Server) fetchLag(ctx context.Context, u string) relayLag {
	out := relayLag{URL: u}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	if s.cfg.RelayToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.RelayToken)
	}
	resp, err := s.upstream.Do(req)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxLagBody))
	var report struct {
		Sources json.RawMessage `json:"sources"`
	}
	switch {
	case err != nil:
		out.Error = err.Error()
	case resp.StatusCode != http.StatusOK:
		out.Error = fmt.Sprintf("status %d", resp.StatusCode)
	case json.Unmarshal(body, &report) != nil || len(report.Sources) == 0:
		out.Error = "not a lag report"
	default:
		out.Sources = report.Sources
	}
	return out
}
