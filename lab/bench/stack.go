package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/lab/devstack"
	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/inbox"
	"github.com/alpes/alpes/relay"
)

// system is a running stack with what the scenarios read from it.
type system struct {
	*procstack.Stack
	admin map[string]*pgxpool.Pool // superuser pools, by database (every service's)
	http  *http.Client
}

// startSystem starts a durable stack on the embedded broker. args and
// pgSettings go to procstack.
func (r *runner) startSystem(ctx context.Context, args map[string][]string, pgSettings map[string]string) (*system, error) {
	return r.startStack(ctx, procstack.Options{Args: args, PostgresSettings: pgSettings})
}

// startStack starts a durable stack with opts, whose binary, durability,
// log level and logger it sets.
func (r *runner) startStack(ctx context.Context, opts procstack.Options) (*system, error) {
	start := time.Now()
	opts.Binary, opts.Durable, opts.LogLevel, opts.Logger = r.opts.Binary, true, "warn", r.opts.Logger
	s, err := procstack.Start(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("starting the stack: %w", err)
	}
	sys := &system{Stack: s, admin: map[string]*pgxpool.Pool{}, http: &http.Client{Timeout: 5 * time.Second}}
	for _, db := range migrations.Services {
		pool, err := pgxpool.New(ctx, s.Cluster.AdminDSN(db))
		if err != nil {
			sys.close()
			return nil, fmt.Errorf("connecting to %s: %w", db, err)
		}
		sys.admin[db] = pool
	}
	on := ""
	if opts.Pulsar == devstack.PulsarReal {
		on = " on Apache Pulsar"
	}
	r.printf("   stack%s up in %s (%s)", on, time.Since(start).Round(time.Millisecond), s.Dir())
	return sys, nil
}

func (s *system) close() error {
	for _, p := range s.admin {
		p.Close()
	}
	return s.Close()
}

func (s *system) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// relayLag reads GET /v1/lag.
func (s *system) relayLag(ctx context.Context) ([]relay.SourceLag, error) {
	var rep relay.LagReport
	err := s.getJSON(ctx, s.RelayURL+"/v1/lag", &rep)
	return rep.Sources, err
}

// orderFlow are the topics every order passes through; the catalogue's
// topic is idle under load and left out of lag checks.
func (s *system) orderFlow() []string {
	return []string{s.Topics.OrderCommands, s.Topics.OrderEvents, s.Topics.PaymentEvents}
}

// lagSample is one reading of how far behind the pipeline is.
type lagSample struct {
	At time.Time `json:"at"`
	// RelaySeconds is the largest seconds_behind of the relay's sources.
	RelaySeconds float64 `json:"relay_seconds"`
	RelayBytes   int64   `json:"relay_bytes"`
	// ConsumerSeconds, per service: over the order-flow topics, the largest
	// of commit → applied of the newest applied message and the time since
	// anything was applied.
	ConsumerSeconds map[string]float64 `json:"consumer_seconds"`
	// Applied is the number of messages each service has recorded.
	Applied map[string]int64 `json:"applied"`
}

func (s *system) sampleLag(ctx context.Context) (lagSample, error) {
	at := time.Now()
	l := lagSample{At: at, ConsumerSeconds: map[string]float64{}, Applied: map[string]int64{}}
	sources, err := s.relayLag(ctx)
	if err != nil {
		return l, err
	}
	for _, src := range sources {
		l.RelaySeconds = max(l.RelaySeconds, src.SecondsBehind)
		l.RelayBytes += src.BytesBehind
	}
	for _, name := range slices.Sorted(maps.Keys(s.ProgressURLs)) {
		var rep inbox.ProgressReport
		if err := s.getJSON(ctx, s.ProgressURLs[name], &rep); err != nil {
			return l, err
		}
		behind := 0.0
		for _, t := range rep.Topics {
			l.Applied[name] += t.AppliedCount
			if slices.Contains(s.orderFlow(), t.Topic) {
				behind = max(behind, t.LagSeconds, at.Sub(t.LastAppliedAt).Seconds())
			}
		}
		l.ConsumerSeconds[name] = behind
	}
	return l, nil
}

// sampleLagEvery samples until ctx ends or d has passed, every interval.
func (s *system) sampleLagEvery(ctx context.Context, d, interval time.Duration) []lagSample {
	var out []lagSample
	end := time.Now().Add(d)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return out
		case <-tick.C:
		}
		if l, err := s.sampleLag(ctx); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// quiesce waits until the relay has published everything and no consumer
// has applied anything for a while: the pipeline is idle again. It gives up
// after timeout without an error; the caller's counts tell.
func (s *system) quiesce(ctx context.Context, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	var last map[string]int64
	stableSince := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		l, err := s.sampleLag(ctx)
		if err == nil && l.RelayBytes == 0 && maps.Equal(l.Applied, last) {
			if time.Since(stableSince) >= 500*time.Millisecond {
				return
			}
		} else {
			stableSince = time.Now()
		}
		if err == nil {
			last = l.Applied
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// usage is a snapshot of what each component has used so far.
type usage struct {
	cpu     map[string]time.Duration // by component, plus "postgres" and "load generator"
	rss     map[string]int64         // peak RSS, by component
	xacts   map[string]int64         // committed transactions, by database
	walByte int64                    // pg_current_wal_lsn() as bytes
	walSync int64                    // pg_stat_wal.wal_sync: WAL flushes to disk
}

// Component names beside procstack's.
const (
	componentPostgres = "postgres"
	componentLoad     = "load generator"
)

func (s *system) usage(ctx context.Context) usage {
	u := usage{cpu: map[string]time.Duration{}, rss: map[string]int64{}, xacts: map[string]int64{}}
	for _, p := range s.Procs() {
		pu := p.Usage()
		u.cpu[p.Name], u.rss[p.Name] = pu.CPU, pu.PeakRSS
	}
	u.cpu[componentPostgres] = postgresCPU(s.Cluster)
	u.cpu[componentLoad] = selfCPU()
	pool := s.admin["orders"]
	rows, err := pool.Query(ctx, `SELECT datname, xact_commit FROM pg_stat_database WHERE datname = ANY($1)`, migrations.Services)
	if err == nil {
		type row struct {
			Datname    string `db:"datname"`
			XactCommit int64  `db:"xact_commit"`
		}
		if rs, err := pgx.CollectRows(rows, pgx.RowToStructByName[row]); err == nil {
			for _, r := range rs {
				u.xacts[r.Datname] = r.XactCommit
			}
		}
	}
	_ = pool.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, (SELECT wal_sync FROM pg_stat_wal)`).Scan(&u.walByte, &u.walSync)
	return u
}

// Cost is what one order (or one transaction) cost, per component, over an
// interval: CPU in microseconds, Postgres transactions and WAL bytes.
type Cost struct {
	Units       int64              `json:"units"` // orders or transactions it is divided by
	CPUMicros   map[string]float64 `json:"cpu_us"`
	TotalMicros float64            `json:"total_cpu_us"`
	// CPUCeiling is cores × 1 s ÷ TotalMicros: the rate at which the CPU of
	// the whole box would be used up, every component counted.
	CPUCeiling float64            `json:"cpu_ceiling_per_s"`
	Xacts      map[string]float64 `json:"postgres_xacts"`
	TotalXacts float64            `json:"total_postgres_xacts"`
	WALBytes   float64            `json:"wal_bytes"`
	WALSyncs   float64            `json:"wal_syncs"`
}

func costBetween(before, after usage, units int64, cores int) Cost {
	c := Cost{Units: units, CPUMicros: map[string]float64{}, Xacts: map[string]float64{}}
	if units <= 0 {
		return c
	}
	n := float64(units)
	for name, cpu := range after.cpu {
		us := micros(cpu-before.cpu[name]) / n
		c.CPUMicros[name] = us
		c.TotalMicros += us
	}
	for db, x := range after.xacts {
		v := float64(x-before.xacts[db]) / n
		c.Xacts[db] = v
		c.TotalXacts += v
	}
	c.WALBytes = float64(after.walByte-before.walByte) / n
	c.WALSyncs = float64(after.walSync-before.walSync) / n
	if c.TotalMicros > 0 {
		c.CPUCeiling = float64(cores) * 1e6 / c.TotalMicros
	}
	return c
}

// peakRSS returns every component's peak RSS in MiB.
func peakRSS(u usage) map[string]float64 {
	m := map[string]float64{}
	for name, b := range u.rss {
		m[name] = float64(b) / (1 << 20)
	}
	return m
}
