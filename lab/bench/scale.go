package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/alpes/alpes/lab/loadgen"
	"github.com/alpes/alpes/lab/oracle"
	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/migrations"
)

// Scale is the consumer stage's scaling: orders and payments, the two
// services that run as several instances on one Key_Shared subscription
// each, with 1, 2, 4, … instances, every one of their processes held to the
// same fixed share of one core, so that the stage bounds the pipeline and
// what more instances buy shows on a small machine. Per number of
// instances, a fresh stack drains a backlog of orders that waits at the
// stage's door.
type Scale struct {
	// NotMeasured says why nothing was measured: no CPU controller could
	// hold the processes to a share. Empty when measured.
	NotMeasured string `json:"not_measured,omitempty"`
	// CPUControl names the controller and where the groups were made.
	CPUControl string `json:"cpu_control,omitempty"`
	// CPUShare is each stage process's share of one core.
	CPUShare float64 `json:"cpu_share"`
	// Orders is the backlog of each run; PlaceRate the rate it was placed at.
	Orders    int         `json:"orders_per_backlog"`
	PlaceRate float64     `json:"place_rate_per_s"`
	Steps     []ScaleStep `json:"steps"`
}

// ScaleStep is one number of instances, on its own stack.
type ScaleStep struct {
	Instances int `json:"instances"`
	// Processes is how many processes the stage ran: Instances of orders
	// and as many of payments.
	Processes int `json:"processes"`
	// Rate is the backlog's orders divided by the time from thawing the
	// stage to the last of them settling in orders, per run.
	Rate Spread `json:"settled_per_s"`
	// Speedup is Rate's median ÷ the first step's (one instance).
	Speedup float64 `json:"speedup"`
	// StageCPU is the CPU time of the stage's processes per order, from
	// the thaw until the pipeline is idle again, µs; ServiceCPU the same
	// of each service's processes.
	StageCPU   Spread            `json:"stage_cpu_us_per_order"`
	ServiceCPU map[string]Spread `json:"service_cpu_us_per_order"`
	// QuotaUsed is, per service, its processes' CPU time over the drain ÷
	// what their shares allowed over it, in %: near 100 for the service
	// whose shares bound the drain.
	QuotaUsed map[string]Spread `json:"quota_used_pct"`
	Runs      []ScaleRun        `json:"runs"`
	// Order is the per-order order of every consumer's applies, over every
	// order the stack held; Oracle is lab/oracle's verdict on the stack.
	Order  ApplyOrder      `json:"apply_order"`
	Oracle *oracle.Verdict `json:"oracle,omitempty"`
}

// ScaleRun is one backlog drained.
type ScaleRun struct {
	// Client placed the backlog and did not follow the orders' outcomes:
	// its unresolved count is every order it placed.
	Client loadgen.Summary `json:"client"`
	// FrozenSeconds is how long the stage was stopped (SIGSTOP) while the
	// backlog was placed and published.
	FrozenSeconds float64 `json:"frozen_s"`
	// DrainSeconds runs from the thaw to the commit of the last order's
	// settlement in orders.
	DrainSeconds float64            `json:"drain_s"`
	Rate         float64            `json:"settled_per_s"`
	StageCPU     float64            `json:"stage_cpu_us_per_order"`
	ServiceCPU   map[string]float64 `json:"service_cpu_us_per_order"`
	QuotaUsedPct map[string]float64 `json:"quota_used_pct"`
	// Cost is every process's, per order of the backlog, from the thaw
	// until the pipeline is idle again.
	Cost Cost `json:"cost_per_order"`
}

// ApplyOrder is the per-order order check of one stack's consumers.
type ApplyOrder struct {
	// Rule says what was checked.
	Rule string `json:"rule"`
	// Orders is how many orders had events checked; Applied the inbox rows
	// checked, by consumer.
	Orders  int            `json:"orders"`
	Applied map[string]int `json:"applied"`
	// Violations counts the events applied before an event of the same
	// order that their source committed earlier; Examples lists the first.
	Violations int      `json:"violations"`
	Examples   []string `json:"examples,omitempty"`
}

// scaleWarmUp is how many orders each stack settles before its first
// backlog, with the stage held to its shares: connections and prepared
// statements are made then, not in the measured drain.
const scaleWarmUp = 50

// scaleDrainWait bounds one backlog's drain.
const scaleDrainWait = 5 * time.Minute

// scaleMaxFrozen bounds the placing of a backlog (Sizes), during which the
// stage is stopped: the broker pings its clients every 30 s and closes a
// connection that did not answer by the next ping.
const scaleMaxFrozen = 20 * time.Second

// scale measures the stage with each number of instances of
// Sizes.ScaleInstances, each on a fresh stack. Without a writable CPU
// controller it measures nothing and says why.
func (r *runner) scale(ctx context.Context) (*Scale, error) {
	sz := r.opts.Sizes
	sc := &Scale{CPUShare: sz.ScaleCPUShare, Orders: sz.ScaleOrders, PlaceRate: sz.ScalePlaceRate}
	groups, err := newCPUGroups()
	if err != nil {
		sc.NotMeasured = "no CPU controller could hold the stage's processes to a share of a core: " + err.Error()
		r.printf("   scale not measured: %s", sc.NotMeasured)
		return sc, nil
	}
	sc.CPUControl = groups.String()
	r.printf("   each stage process held to %.3f of a core: %s", sz.ScaleCPUShare, sc.CPUControl)
	for _, n := range sz.ScaleInstances {
		st, err := r.scaleStep(ctx, groups, n)
		if st != nil {
			sc.Steps = append(sc.Steps, *st)
		}
		if err != nil {
			sc.speedups()
			return sc, fmt.Errorf("with %d instances: %w", n, err)
		}
	}
	sc.speedups()
	return sc, nil
}

// speedups sets each step's Speedup against the first step's rate.
func (sc *Scale) speedups() {
	if len(sc.Steps) == 0 || sc.Steps[0].Rate.Median <= 0 {
		return
	}
	for i := range sc.Steps {
		sc.Steps[i].Speedup = sc.Steps[i].Rate.Median / sc.Steps[0].Rate.Median
	}
}

// stage is the processes of the consumer stage: every instance of orders
// and of payments.
func stage(s *procstack.Stack) []*procstack.Proc {
	return append([]*procstack.Proc{s.Orders, s.Payments}, s.Replicas...)
}

// stageServices are the services of the stage.
var stageServices = []string{"orders", "payments"}

// serviceOf is the service a stage process is an instance of: orders-2 is
// one of orders.
func serviceOf(p *procstack.Proc) string {
	svc, _, _ := strings.Cut(p.Name, "-")
	return svc
}

// scaleStep measures n instances on a fresh stack: its stage processes held
// to their shares, a warm-up, a backlog per run, then the checks of every
// order the stack held.
func (r *runner) scaleStep(ctx context.Context, groups *cpuGroups, n int) (_ *ScaleStep, err error) {
	sz := r.opts.Sizes
	// Commit timestamps date the settlements and order the applies.
	sys, err := r.startStack(ctx, procstack.Options{Instances: n, PostgresSettings: map[string]string{"track_commit_timestamp": "on"}})
	if err != nil {
		return nil, err
	}
	// The limits go first: a process held to a small share is slow to
	// stop, up to the stack's grace period.
	defer func() {
		if rmErr := groups.remove(); rmErr != nil {
			r.printf("   %v", rmErr)
			err = errors.Join(err, rmErr)
		}
		sys.close()
	}()
	procs := stage(sys.Stack)
	for _, p := range procs {
		if err := groups.limit(p.Name, p.PID(), sz.ScaleCPUShare); err != nil {
			return nil, err
		}
	}
	st := &ScaleStep{Instances: n, Processes: len(procs)}
	ledger := &loadgen.Ledger{}
	if _, err := loadgen.Run(ctx, loadgen.Config{BFFURL: sys.BFFURL, Rate: sz.ScalePlaceRate, Count: min(scaleWarmUp, sz.ScaleOrders),
		OutcomeWait: sz.OutcomeWait, Seed: 6999, Ledger: ledger}); err != nil {
		return st, fmt.Errorf("warming up: %w", err)
	}
	sys.quiesce(ctx, sz.OutcomeWait)

	for run := range r.opts.Runs {
		sr, err := r.scaleRun(ctx, sys, procs, ledger, uint64(7000+100*n+run))
		if err != nil {
			return st, err
		}
		r.printf("   scale, %d instance%s, run %d: %d orders drained in %.2f s, %.1f orders/s; stage CPU %.0f µs per order; quota used: orders %.0f %%, payments %.0f %%",
			n, plural(n, "", "s"), run+1, sr.Client.Accepted, sr.DrainSeconds, sr.Rate, sr.StageCPU, sr.QuotaUsedPct["orders"], sr.QuotaUsedPct["payments"])
		st.Runs = append(st.Runs, sr)
	}
	st.Rate = spreadBy(st.Runs, func(sr ScaleRun) float64 { return sr.Rate })
	st.StageCPU = spreadBy(st.Runs, func(sr ScaleRun) float64 { return sr.StageCPU })
	st.ServiceCPU, st.QuotaUsed = map[string]Spread{}, map[string]Spread{}
	for _, svc := range stageServices {
		st.ServiceCPU[svc] = spreadBy(st.Runs, func(sr ScaleRun) float64 { return sr.ServiceCPU[svc] })
		st.QuotaUsed[svc] = spreadBy(st.Runs, func(sr ScaleRun) float64 { return sr.QuotaUsedPct[svc] })
	}

	if st.Order, err = checkApplyOrder(ctx, sys); err != nil {
		return st, fmt.Errorf("checking the order of applies: %w", err)
	}
	v, err := oracle.Check(ctx, sys.OracleConfig(ledger.Ops(), sz.OutcomeWait, nil))
	if err != nil {
		return st, fmt.Errorf("the oracle: %w", err)
	}
	st.Oracle = &v
	r.printf("   scale, %d instance%s: %d orders checked, %d applied out of order; oracle %s, %d violations",
		n, plural(n, "", "s"), st.Order.Orders, st.Order.Violations, cleanOrNot(v), v.Violations())
	return st, nil
}

// scaleRun freezes the stage, places the backlog and waits until the relay
// has published all of it, then thaws the stage and times the drain.
func (r *runner) scaleRun(ctx context.Context, sys *system, procs []*procstack.Proc, ledger *loadgen.Ledger, seed uint64) (ScaleRun, error) {
	sz := r.opts.Sizes
	var sr ScaleRun
	frozen := time.Now()
	for _, p := range procs {
		if err := p.Freeze(); err != nil {
			return sr, err
		}
	}
	thaw := func() error {
		var errs []error
		for _, p := range procs {
			errs = append(errs, p.Thaw())
		}
		return errors.Join(errs...)
	}
	// The client places the orders and does not wait for outcomes, which
	// cannot come while the stage is stopped: an outcome wait this short
	// ends at once. The drain is timed from the databases instead.
	sum, err := loadgen.Run(ctx, loadgen.Config{BFFURL: sys.BFFURL, Rate: sz.ScalePlaceRate, Count: sz.ScaleOrders,
		OutcomeWait: time.Nanosecond, Seed: seed, Ledger: ledger})
	if err != nil && !errors.Is(err, loadgen.ErrUnresolved) {
		return sr, errors.Join(fmt.Errorf("placing the backlog: %w", err), thaw())
	}
	sr.Client = sum
	if sum.Accepted == 0 {
		return sr, errors.Join(errors.New("the bff accepted none of the backlog"), thaw())
	}
	if err := sys.relayCaughtUp(ctx, sz.OutcomeWait); err != nil {
		return sr, errors.Join(err, thaw())
	}
	settled, err := sys.settledOrders(ctx)
	if err != nil {
		return sr, errors.Join(err, thaw())
	}
	want := settled + sum.Accepted
	before := sys.usage(ctx)
	thawed := time.Now()
	if err := thaw(); err != nil {
		return sr, err
	}
	sr.FrozenSeconds = thawed.Sub(frozen).Seconds()

	deadline := time.Now().Add(scaleDrainWait)
	for settled < want {
		if time.Now().After(deadline) {
			return sr, fmt.Errorf("%d of %d orders settled %s after the thaw", settled-(want-sum.Accepted), sum.Accepted, scaleDrainWait)
		}
		select {
		case <-ctx.Done():
			return sr, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if settled, err = sys.settledOrders(ctx); err != nil {
			return sr, err
		}
	}
	atEnd, endedAt := sys.usage(ctx), time.Now()
	var last time.Time
	if err := sys.admin["orders"].QueryRow(ctx, `SELECT max(pg_xact_commit_timestamp(xmin)) FROM orders WHERE settled_at IS NOT NULL`).Scan(&last); err != nil {
		return sr, fmt.Errorf("dating the last settlement: %w", err)
	}
	drain := last.Sub(thawed)
	sr.DrainSeconds, sr.Rate = drain.Seconds(), perSecond(sum.Accepted, drain)
	used, count := map[string]time.Duration{}, map[string]int{}
	for _, p := range procs {
		used[serviceOf(p)] += atEnd.cpu[p.Name] - before.cpu[p.Name]
		count[serviceOf(p)]++
	}
	sr.QuotaUsedPct = map[string]float64{}
	for svc, cpu := range used {
		if allowed := float64(count[svc]) * sz.ScaleCPUShare * endedAt.Sub(thawed).Seconds(); allowed > 0 {
			sr.QuotaUsedPct[svc] = cpu.Seconds() / allowed * 100
		}
	}

	// Postgres publishes its transaction counts at most once a second, so
	// those of Cost may miss the last second's: the report shows its CPU.
	sys.quiesce(ctx, sz.OutcomeWait)
	after := sys.usage(ctx)
	sr.Cost = costBetween(before, after, sum.Accepted, runtime.NumCPU())
	sr.ServiceCPU = map[string]float64{}
	for _, p := range procs {
		sr.StageCPU += sr.Cost.CPUMicros[p.Name]
		sr.ServiceCPU[serviceOf(p)] += sr.Cost.CPUMicros[p.Name]
	}
	return sr, nil
}

// settledOrders counts the orders settled (confirmed or rejected) in orders.
func (s *system) settledOrders(ctx context.Context) (int64, error) {
	var n int64
	if err := s.admin["orders"].QueryRow(ctx, `SELECT count(*) FROM orders WHERE settled_at IS NOT NULL`).Scan(&n); err != nil {
		return 0, fmt.Errorf("counting settled orders: %w", err)
	}
	return n, nil
}

// relayCaughtUp waits until the relay has published everything committed
// so far: no source is behind. It reads only the relay, which answers while
// consumers are stopped.
func (s *system) relayCaughtUp(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		sources, err := s.relayLag(ctx)
		if err == nil {
			var behind int64
			for _, src := range sources {
				behind += src.BytesBehind
			}
			if behind == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the relay had not published the backlog after %s (last reading: %v)", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// applyOrderRule is what checkApplyOrder checks.
const applyOrderRule = "per order, each consumer applied the order's events of one topic in the order their source committed them, and orders and payments, the scaled stage, all of the order's events they consume in that order; apply order is the apply transaction's commit timestamp, then the inbox row's insertion time"

// checkApplyOrder reads every consumer's inbox (the order-flow topics) and
// the producers' outboxes (which order each event belongs to) and checks
// applyOrderRule: an event applied after another of its order that its
// source committed later is a violation.
func checkApplyOrder(ctx context.Context, sys *system) (ApplyOrder, error) {
	a := ApplyOrder{Rule: applyOrderRule, Applied: map[string]int{}}
	orderOf := map[string]string{}
	for _, db := range migrations.Producers {
		rows, err := sys.admin[db].Query(ctx, `SELECT id::text, aggregate_id FROM outbox WHERE topic = ANY($1)`, sys.orderFlow())
		if err != nil {
			return a, fmt.Errorf("reading %s's outbox: %w", db, err)
		}
		for rows.Next() {
			var id, order string
			if err := rows.Scan(&id, &order); err != nil {
				rows.Close()
				return a, err
			}
			orderOf[id] = order
		}
		if err := rows.Err(); err != nil {
			return a, err
		}
	}
	type applied struct {
		event, typ, topic string
		source            time.Time // the source's commit
		commit, at        time.Time // the apply's commit, the row's insertion
	}
	orders := map[string]bool{}
	for _, db := range migrations.Services {
		rows, err := sys.admin[db].Query(ctx, `
			SELECT event_id::text, type, topic, source_committed_at, pg_xact_commit_timestamp(xmin), applied_at
			FROM inbox WHERE topic = ANY($1)`, sys.orderFlow())
		if err != nil {
			return a, fmt.Errorf("reading %s's inbox: %w", db, err)
		}
		// One sequence per order (the stage) or per order and topic.
		seqs := map[[2]string][]applied{}
		for rows.Next() {
			var e applied
			var source, commit *time.Time
			if err := rows.Scan(&e.event, &e.typ, &e.topic, &source, &commit, &e.at); err != nil {
				rows.Close()
				return a, err
			}
			if source == nil || commit == nil {
				rows.Close()
				return a, fmt.Errorf("%s's inbox row %s has no source commit time or no apply commit timestamp", db, e.event)
			}
			e.source, e.commit = *source, *commit
			order, ok := orderOf[e.event]
			if !ok {
				rows.Close()
				return a, fmt.Errorf("%s applied event %s, which no outbox holds", db, e.event)
			}
			key := [2]string{order, e.topic}
			if db == "orders" || db == "payments" {
				key[1] = ""
			}
			seqs[key] = append(seqs[key], e)
			orders[order] = true
			a.Applied[db]++
		}
		if err := rows.Err(); err != nil {
			return a, err
		}
		for _, key := range slices.SortedFunc(maps.Keys(seqs), func(x, y [2]string) int { return cmp.Or(cmp.Compare(x[0], y[0]), cmp.Compare(x[1], y[1])) }) {
			seq := seqs[key]
			slices.SortStableFunc(seq, func(x, y applied) int {
				if c := x.commit.Compare(y.commit); c != 0 {
					return c
				}
				return x.at.Compare(y.at)
			})
			for i := 1; i < len(seq); i++ {
				if prev, e := seq[i-1], seq[i]; e.source.Before(prev.source) {
					a.Violations++
					if len(a.Examples) < 10 {
						a.Examples = append(a.Examples, fmt.Sprintf("%s applied %s of order %s (source commit %s) after %s (source commit %s)",
							db, shortType(e.typ), key[0], e.source.Format(time.RFC3339Nano), shortType(prev.typ), prev.source.Format(time.RFC3339Nano)))
					}
				}
			}
		}
	}
	a.Orders = len(orders)
	return a, nil
}

// shortType is a protobuf message name without its package.
func shortType(t string) string { return t[strings.LastIndexByte(t, '.')+1:] }

// cleanOrNot names an oracle verdict in one word.
func cleanOrNot(v oracle.Verdict) string {
	if v.OK() {
		return "clean"
	}
	return "NOT clean"
}
