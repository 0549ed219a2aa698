package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// probeCmd is the health check of the container images, which are
// distroless (no shell, no curl): GET one URL, succeed only on 200.
type probeCmd struct {
	URL     string        `arg:"" help:"The URL to GET, e.g. http://127.0.0.1:8081/readyz."`
	Timeout time.Duration `help:"Give up after this long." default:"2s"`
}

// Run asks c.URL once. It prints nothing when the answer is 200 OK; any
// other answer (a redirect included: it is not followed) or no answer is
// its error, with the start of the body, which says why (the relay's
// /readyz names each source's state).
func (c *probeCmd) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.URL, nil)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	client := &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true}, // no proxy from the environment
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return fmt.Errorf("probe: GET %s: %s: %s", c.URL, resp.Status, strings.TrimSpace(string(body)))
}
