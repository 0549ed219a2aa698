// Package oracle decides, after the fact, whether alpes kept its promises
// (docs/reliability.md, I1–I5) through whatever a run did to it.
//
// It takes the client's ledger (lab/loadgen: every operation with its
// fate, ok, failed or unknown, what it placed and what it was told), the
// admin DSN of every service database, the broker's URL and the system's
// topics (its tenant's). It first waits, with a deadline, for the system to
// be quiet: every relay slot caught up with the WAL, every outbox event in
// every consumer's inbox, every order terminal, nothing changing. Then it
// reads every database and every topic from the start and checks:
//
//   - ledger: every ok operation's key names its order, no failed
//     operation's key names one, an unknown one names at most one; every
//     idempotency record is an operation's and would replay its order;
//   - load: the system holds at least Config.MinOrders orders (never 0);
//   - effects: every order that should exist has exactly one effect in each
//     consumer (the bff's request and view, orders' order, payments' payment
//     when it was placed, reporting's facts) and no order exists, nor has a
//     view or a timeline, that no operation asked for;
//   - terminal: every order is confirmed or rejected, alike everywhere;
//   - outcome: what the client was told (confirmed or rejected) is the
//     order's final state everywhere;
//   - content: every order holds what was placed (customer, address, lines),
//     at the catalogue's prices, its total their sum, its payment of that
//     total, and the bff's view and reporting show the same figures;
//   - order: per order, its events are in causal order on the broker;
//   - timeline: reporting's timeline holds each order's events by id and
//     type, once each, in causal order, and nothing else;
//   - inbox: each consumer's inbox holds exactly the outbox events of the
//     topics it consumes; parked: nothing is parked;
//   - broker: every topic holds each outbox event exactly once (none
//     missing, none twice) with the row's key, type and payload byte for
//     byte: the relay never confirmed past what the broker receipted,
//     re-sends were deduplicated, and nothing was altered on the way;
//   - slots: every relay slot's confirmed position reached the WAL's end as
//     it was when the system went still.
package oracle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/services/eventcatalog"
)

// Config says what to check and where.
type Config struct {
	// Ops is the client's ledger: every operation made on the system.
	Ops []loadgen.Op
	// DSNs are admin connection strings of every service's database, by
	// service name (migrations.Services), e.g. Cluster.AdminDSN("orders").
	DSNs map[string]string
	// BrokerURL is the Pulsar service URL of the broker.
	BrokerURL string
	// Topics are the topics of the system's tenant, whose consumers the
	// oracle checks. The zero value is eventcatalog.DefaultTopics().
	Topics eventcatalog.Topics
	// QuietTimeout bounds the wait for the system to be quiet (see
	// Verdict.Quiet). Default 3m.
	QuietTimeout time.Duration
	// ExpectParked is how many parked messages are expected in all; the
	// default, 0, makes any parked message a violation.
	ExpectParked int
	// MinOrders is how many orders the system must hold (ok operations and
	// unknown ones that were written) for the verdict to be clean: fewer
	// and the run proves nothing. It is never less than 1.
	MinOrders int
	Logger    *slog.Logger
}

// services are the databases the oracle reads.
var services = migrations.Services

func isProducer(service string) bool { return slices.Contains(migrations.Producers, service) }

// consumedTopics lists the topics each consuming service subscribes to,
// among t.
func consumedTopics(t eventcatalog.Topics) map[string][]string {
	return map[string][]string{
		"bff":       {t.OrderEvents, t.CatalogEvents},
		"orders":    {t.OrderCommands, t.PaymentEvents},
		"payments":  {t.OrderEvents},
		"reporting": {t.OrderEvents, t.PaymentEvents},
	}
}

// Check waits for the system to be quiet, then checks it. The error is for
// when the oracle itself could not look (a database or the broker
// unreachable); what it found is in the Verdict.
func Check(ctx context.Context, cfg Config) (Verdict, error) {
	if cfg.QuietTimeout <= 0 {
		cfg.QuietTimeout = 3 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, s := range services {
		if cfg.DSNs[s] == "" {
			return Verdict{}, fmt.Errorf("no DSN for %s", s)
		}
	}
	if cfg.BrokerURL == "" {
		return Verdict{}, errors.New("no broker URL")
	}
	topics, err := cfg.Topics.Resolve()
	if err != nil {
		return Verdict{}, fmt.Errorf("reading the topics: %w", err)
	}
	cfg.Topics = topics
	var v Verdict
	start := time.Now()
	slots, err := awaitQuiet(ctx, cfg)
	v.QuietWait = time.Since(start)
	switch {
	case errors.Is(err, errNotQuiet):
		v.StillMoving = err.Error()
	case err != nil:
		return v, err
	default:
		v.Quiet = true
	}
	cfg.Logger.Info("oracle: waited for quiet", "quiet", v.Quiet, "took", v.QuietWait)
	return v, inspect(ctx, cfg, slots, &v)
}

// inspect reads every database and every topic and judges what it read
// into v, with the relay slots as the wait for quiet last saw them.
func inspect(ctx context.Context, cfg Config, slots []slotState, v *Verdict) error {
	snap, err := read(ctx, cfg.DSNs)
	if err != nil {
		return err
	}
	onBroker, err := readBroker(ctx, cfg.BrokerURL, topicsOf(snap, cfg.Topics), cfg.Logger)
	if err != nil {
		return err
	}
	judge(v, cfg, snap, onBroker, slots)
	return nil
}

// topicsOf lists the topics of the outbox events, and the consumed ones.
func topicsOf(s *snapshot, topics eventcatalog.Topics) []string {
	set := map[string]bool{}
	for _, e := range s.events {
		set[e.topic] = true
	}
	for _, ts := range consumedTopics(topics) {
		for _, t := range ts {
			set[t] = true
		}
	}
	var out []string
	for t := range set {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}
