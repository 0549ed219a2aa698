package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alpes/alpes/relay"
)

type lagCmd struct {
	URL     string        `help:"Base URL of the relay's HTTP endpoints." default:"${relay_url}"`
	Token   string        `help:"Bearer token, when the relay requires one." placeholder:"TOKEN"`
	JSON    bool          `help:"Print the relay's JSON report as it is."`
	Watch   bool          `help:"Refresh until interrupted."`
	Every   time.Duration `help:"Refresh interval with --watch." default:"2s"`
	Timeout time.Duration `help:"Give up on a request after this long." default:"5s"`
}

func (c *lagCmd) Run(ctx context.Context, e env) error {
	for {
		report, raw, err := c.fetch(ctx)
		if err != nil {
			return err
		}
		if c.JSON {
			e.stdout.Write(raw)
		} else {
			if c.Watch {
				fmt.Fprint(e.stdout, "\033[H\033[2J") // clear the terminal between refreshes
			}
			printLag(e.stdout, report, time.Now())
		}
		if !c.Watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Every):
		}
	}
}

func (c *lagCmd) fetch(ctx context.Context) (relay.LagReport, []byte, error) {
	var report relay.LagReport
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	url := strings.TrimRight(c.URL, "/") + "/v1/lag"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return report, nil, fmt.Errorf("reading --url: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return report, nil, fmt.Errorf("asking the relay at %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return report, nil, fmt.Errorf("reading the relay's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return report, nil, fmt.Errorf("the relay at %s answered %s: %s", c.URL, resp.Status, strings.TrimSpace(string(raw)))
	}
	if err := json.Unmarshal(raw, &report); err != nil {
		return report, nil, fmt.Errorf("decoding the relay's answer: %w", err)
	}
	return report, raw, nil
}

func printLag(w io.Writer, report relay.LagReport, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tSLOT\tSTATE\tBYTES BEHIND\tSECONDS BEHIND\tIN FLIGHT\tPUBLISHED\tLAST PUBLISH\tWAL STATUS\tCONFIRMED\tCURRENT")
	for _, l := range report.Sources {
		last := "-"
		if l.LastPublishTime != nil {
			last = now.Sub(*l.LastPublishTime).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.1f\t%d\t%d\t%s\t%s\t%s\t%s\n",
			l.Source, l.Slot, l.State, l.BytesBehind, l.SecondsBehind, l.InFlight, l.MessagesPublished, last,
			orDash(l.WALStatus), l.ConfirmedFlushLSN, l.CurrentWALLSN)
		if l.Error != "" {
			fmt.Fprintf(tw, "  error: %s\n", l.Error)
		}
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
