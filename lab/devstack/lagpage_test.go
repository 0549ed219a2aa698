package devstack_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/alpes/alpes/lab/loadgen"
)

// TestLagPageMovesWhileOrdersFlow opens the lag page that `alpes dev`
// prints in a real headless browser (Debian's chromium, through the DevTools
// protocol) while the fake customers place orders, and checks that the page
// keeps refreshing by itself and that its figures move: orders per second
// above zero, every relay source and consumer drawn, a consumer applying.
// Without chromium the test fails: `.ci/run` installs it.
func TestLagPageMovesWhileOrdersFlow(t *testing.T) {
	out := startStack(t)
	page := urlAfter(t, out, "Lag page (live):")
	bff := urlAfter(t, out, "Public API (bff):")

	// Orders flow for the whole test: bounded in count and time, loopback only.
	loadCtx, stopLoad := context.WithCancel(context.Background())
	loaded := make(chan error, 1)
	go func() {
		_, err := loadgen.Run(loadCtx, loadgen.Config{BFFURL: bff, Rate: 25, Count: 3000, Seed: 7, OutcomeWait: 30 * time.Second})
		loaded <- err
	}()
	t.Cleanup(func() {
		stopLoad()
		<-loaded
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.NoSandbox, chromedp.Flag("disable-gpu", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	defer cancel()

	// shown is what the page shows at one moment.
	type shown struct {
		Samples         int      `json:"samples"`
		OrdersText      string   `json:"orders"`
		Status          string   `json:"status"`
		Sources         []string `json:"sources"`
		Consumers       []string `json:"consumers"`
		Applying        bool     `json:"applying"`
		OrdersPerSecond float64  `json:"-"`
	}
	const readPage = `({
		samples: parseInt(document.getElementById("status").dataset.samples || "0"),
		orders: document.getElementById("orders-per-second").textContent,
		status: document.getElementById("status").textContent,
		sources: [...document.querySelectorAll("#relays tr[data-source]")].map(tr => tr.dataset.source),
		consumers: [...document.querySelectorAll("#consumers tr[data-consumer]")].map(tr => tr.dataset.consumer),
		applying: [...document.querySelectorAll("#consumers td.applied")].some(td => parseFloat(td.textContent) > 0),
	})`
	read := func() shown {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[shown](readPage))
		if err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		s.OrdersPerSecond, _ = strconv.ParseFloat(s.OrdersText, 64)
		return s
	}
	// waitUntil reads the page every 250 ms until ok holds, failing at the
	// deadline with what it showed last.
	waitUntil := func(what string, deadline time.Time, ok func(shown) bool) shown {
		t.Helper()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			s := read()
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s, the page shows %+v", what, s)
			}
			<-tick.C
		}
	}

	if _, err := chromedp.Run(ctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("opening %s: %v", page, err)
	}
	// The page asks /v1/replication once a second by itself.
	first := waitUntil("orders/s > 0, the 3 relay sources and consumers applying", time.Now().Add(90*time.Second), func(s shown) bool {
		return s.Samples >= 3 && s.OrdersPerSecond > 0 && s.Applying && len(s.Sources) == 3 && len(s.Consumers) > 0
	})
	// And it keeps moving: more samples while orders flow.
	later := waitUntil("three more samples", time.Now().Add(30*time.Second), func(s shown) bool { return s.Samples >= first.Samples+3 })
	if later.OrdersPerSecond <= 0 {
		t.Errorf("orders/s fell to %q while orders flow", later.OrdersText)
	}
	t.Logf("lag page: %q; orders/s %s; sources %v; consumers %v", later.Status, later.OrdersText, later.Sources, later.Consumers)
}
