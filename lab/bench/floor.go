package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/schema"
)

// Floor is the Postgres floor, figure A's reference: what Postgres alone
// spends on the minimal writes of one successful order (floor_replay.go
// lists them), replayed on the services' own migrated schemas by
// Sizes.FloorClients closed-loop clients, each order's part in each
// database pipelined in one batch and committed once there: four commits
// per order, one in each service database. Postgres runs durable, as the
// stacks' does, with a logical walsender per producing database streaming
// its outbox to pg_recvlogical the way the relay's slot would.
//
// Figure A is the CPU of every process per order in the pipeline ÷
// TotalCPU, both measured in the same `alpes bench` run.
type Floor struct {
	Clients int `json:"clients"`
	// Orders are replayed and measured per run, after WarmUp orders that
	// are not.
	Orders int `json:"orders"`
	WarmUp int `json:"warm_up_orders"`
	// Statements is how many statements one order sends to each database:
	// one batch, one round trip and one commit per database.
	Statements map[string]int `json:"statements_per_order"`
	// Rate is orders per second: every client going as fast as Postgres
	// commits.
	Rate Spread `json:"orders_per_s"`
	// CPU per order, µs: Postgres's (the postmaster and every child, the
	// walsenders included), the replay client's (the bench process), the
	// three pg_recvlogical processes', and the sum of the three.
	PostgresCPU Spread     `json:"postgres_cpu_us_per_order"`
	ClientCPU   Spread     `json:"client_cpu_us_per_order"`
	DecoderCPU  Spread     `json:"recvlogical_cpu_us_per_order"`
	TotalCPU    Spread     `json:"total_cpu_us_per_order"`
	Runs        []FloorRun `json:"runs"`
}

// FloorRun is one run of the floor on a fresh cluster.
type FloorRun struct {
	// Asked is the orders the run was to replay after the warm-up, Written
	// those every database committed.
	Asked   int64 `json:"orders_asked"`
	Written int64 `json:"orders_written"`
	// Seconds is from the first measured order to the last commit.
	Seconds      float64 `json:"seconds"`
	OrdersPerSec float64 `json:"orders_per_s"`
	// DecodeCatchUpMillis is from the last commit until every slot had
	// confirmed a marker written after it (at most a status interval, 1 s,
	// when decoding keeps up).
	DecodeCatchUpMillis float64 `json:"decode_catch_up_ms"`
	// Cost is per measured order, from before the first measured order
	// until every slot has confirmed the last.
	Cost Cost `json:"cost_per_order"`
	// Rows and WantRows count, by database.table, the rows each table holds
	// at the end and the rows the orders written (warm-up included) must
	// have left there.
	Rows     map[string]int64 `json:"rows"`
	WantRows map[string]int64 `json:"want_rows"`
}

// Component names of the floor's Cost.
const (
	componentReplay      = "replay client"
	componentRecvlogical = "pg_recvlogical"
)

// floorSlotPrefix names the floor's replication slots, one per producing
// database.
const floorSlotPrefix = "floor_"

func (r *runner) floor(ctx context.Context) (*Floor, error) {
	sz := r.opts.Sizes
	f := &Floor{Clients: sz.FloorClients, Orders: sz.FloorOrders, WarmUp: floorWarmUp(sz)}
	for run := range r.opts.Runs {
		fr, stmts, err := r.floorRun(ctx, run)
		if stmts != nil {
			f.Statements = stmts
		}
		if err != nil {
			return f, err
		}
		r.printf("   floor run %d: %d orders in %.1fs, %.0f orders/s; CPU per order: Postgres %.0f µs, client %.0f µs, pg_recvlogical %.0f µs",
			run+1, fr.Written, fr.Seconds, fr.OrdersPerSec, fr.Cost.CPUMicros[componentPostgres],
			fr.Cost.CPUMicros[componentReplay], fr.Cost.CPUMicros[componentRecvlogical])
		f.Runs = append(f.Runs, fr)
	}
	cpu := func(name string) Spread {
		return spreadBy(f.Runs, func(fr FloorRun) float64 { return fr.Cost.CPUMicros[name] })
	}
	f.Rate = spreadBy(f.Runs, func(fr FloorRun) float64 { return fr.OrdersPerSec })
	f.PostgresCPU, f.ClientCPU, f.DecoderCPU = cpu(componentPostgres), cpu(componentReplay), cpu(componentRecvlogical)
	f.TotalCPU = spreadBy(f.Runs, func(fr FloorRun) float64 { return fr.Cost.TotalMicros })
	return f, nil
}

// floorWarmUp is how many orders warm each run up: enough for every
// client to prepare its statements and for the caches to fill.
func floorWarmUp(sz Sizes) int { return max(5*sz.FloorClients, sz.FloorOrders/20) }

// floorStack is one run's cluster, its decoders and the admin pools.
type floorStack struct {
	cluster  *pgcluster.Cluster
	admin    map[string]*pgxpool.Pool
	decoders []*floorDecoder
}

func (fs *floorStack) close() error {
	var errs []error
	for _, d := range fs.decoders {
		errs = append(errs, d.stop())
	}
	for _, p := range fs.admin {
		p.Close()
	}
	if fs.cluster != nil {
		errs = append(errs, fs.cluster.Stop())
	}
	return errors.Join(errs...)
}

// startFloorStack starts a durable cluster configured as the stacks'
// (procstack: pgcluster with Durable), creates and migrates every service
// database as procstack does, and streams each producing database's
// outbox to a pg_recvlogical.
func (r *runner) startFloorStack(ctx context.Context) (_ *floorStack, err error) {
	start := time.Now()
	fs := &floorStack{admin: map[string]*pgxpool.Pool{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, fs.close())
		}
	}()
	fs.cluster, err = pgcluster.Start(ctx, pgcluster.Options{Durable: true, Logger: r.opts.Logger})
	if err != nil {
		return fs, fmt.Errorf("starting postgres: %w", err)
	}
	for _, db := range migrations.Services {
		if err := migrations.CreateAndMigrate(ctx, fs.cluster.AdminDSN, db, db); err != nil {
			return fs, err
		}
		if fs.admin[db], err = pgxpool.New(ctx, fs.cluster.AdminDSN(db)); err != nil {
			return fs, fmt.Errorf("connecting to %s: %w", db, err)
		}
	}
	for _, db := range migrations.Producers {
		slot := floorSlotPrefix + db
		if _, err := fs.admin[db].Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, slot); err != nil {
			return fs, fmt.Errorf("creating slot %s: %w", slot, err)
		}
		d, err := startFloorDecoder(fs.cluster, db, slot)
		if err != nil {
			return fs, err
		}
		fs.decoders = append(fs.decoders, d)
	}
	if err := fs.waitStreaming(ctx); err != nil {
		return fs, err
	}
	r.printf("   floor cluster up in %s", time.Since(start).Round(time.Millisecond))
	return fs, nil
}

// floorRun replays the warm-up and the measured orders on a fresh
// cluster, then checks every table's count. It returns the statements per
// order too, once the catalogue is known.
func (r *runner) floorRun(ctx context.Context, run int) (FloorRun, map[string]int, error) {
	sz := r.opts.Sizes
	fr := FloorRun{Asked: int64(sz.FloorOrders)}
	fs, err := r.startFloorStack(ctx)
	if err != nil {
		return fr, nil, err
	}
	defer fs.close()

	cat, err := floorCatalogue(ctx, fs.admin["orders"])
	if err != nil {
		return fr, nil, err
	}
	stmts, err := floorStatements(cat)
	if err != nil {
		return fr, nil, err
	}
	clients := make([]*floorClient, sz.FloorClients)
	defer func() {
		for _, fc := range clients {
			if fc != nil {
				fc.close(ctx)
			}
		}
	}()
	for i := range clients {
		if clients[i], err = newFloorClient(ctx, fs.cluster, uint64(run)*1000+uint64(i), cat); err != nil {
			return fr, stmts, err
		}
	}
	warm := floorWarmUp(sz)
	warmWritten, err := replayOrders(ctx, clients, warm)
	if err != nil {
		return fr, stmts, fmt.Errorf("warming up: %w", err)
	}
	if _, err := fs.catchUp(ctx); err != nil {
		return fr, stmts, err
	}
	// A busy backend may hold its counts back for up to 10 s; the
	// warm-up's must be in before the first reading.
	for _, fc := range clients {
		fc.flushStats(ctx)
	}
	time.Sleep(1100 * time.Millisecond) // Postgres publishes its transaction counts at most once a second
	before := fs.usage(ctx)

	start := time.Now()
	fr.Written, err = replayOrders(ctx, clients, sz.FloorOrders)
	wall := time.Since(start)
	if err != nil {
		return fr, stmts, fmt.Errorf("replaying orders: %w", err)
	}
	fr.Seconds, fr.OrdersPerSec = wall.Seconds(), perSecond(fr.Written, wall)
	caughtUp, err := fs.catchUp(ctx)
	if err != nil {
		return fr, stmts, err
	}
	fr.DecodeCatchUpMillis = millis(caughtUp)
	var lines int64
	for i, fc := range clients {
		lines += fc.lines
		fc.close(ctx) // a backend that exits publishes its statistics
		clients[i] = nil
	}
	time.Sleep(1100 * time.Millisecond)
	fr.Cost = costBetween(before, fs.usage(ctx), fr.Written, runtime.NumCPU())

	orders := warmWritten + fr.Written
	fr.WantRows = map[string]int64{"orders.order_lines": lines}
	for table, n := range floorRowsPerOrder {
		fr.WantRows[table] = n * orders
	}
	if fr.Rows, err = fs.countRows(ctx); err != nil {
		return fr, stmts, err
	}
	if bad := fr.rowMismatches(); len(bad) > 0 {
		return fr, stmts, fmt.Errorf("the tables do not hold what %d orders write: %s", orders, strings.Join(bad, "; "))
	}
	return fr, stmts, nil
}

// floorCatalogue reads the products the orders migrations seed.
func floorCatalogue(ctx context.Context, orders *pgxpool.Pool) ([]floorProduct, error) {
	rows, err := orders.Query(ctx, `SELECT sku, name, price_minor, currency FROM products ORDER BY sku`)
	if err != nil {
		return nil, fmt.Errorf("reading the catalogue: %w", err)
	}
	cat, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (floorProduct, error) {
		var p floorProduct
		return p, r.Scan(&p.sku, &p.name, &p.priceMinor, &p.currency)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the catalogue: %w", err)
	}
	if len(cat) == 0 {
		return nil, errors.New("the orders database has no products")
	}
	return cat, nil
}

// countRows counts the rows of every table the replay writes, by
// database.table.
func (fs *floorStack) countRows(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	for db, tables := range floorTables {
		for _, t := range tables {
			var n int64
			if err := fs.admin[db].QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
				return out, fmt.Errorf("counting %s.%s: %w", db, t, err)
			}
			out[db+"."+t] = n
		}
	}
	return out, nil
}

// usage is what the floor's processes have used so far: Postgres, this
// process (the replay client) and the decoders, with the databases'
// committed transactions and the WAL.
func (fs *floorStack) usage(ctx context.Context) usage {
	u := usage{cpu: map[string]time.Duration{}, xacts: map[string]int64{}}
	u.cpu[componentPostgres] = postgresCPU(fs.cluster)
	u.cpu[componentReplay] = selfCPU()
	for _, d := range fs.decoders {
		u.cpu[componentRecvlogical] += d.cpu()
	}
	pool := fs.admin["orders"]
	rows, err := pool.Query(ctx, `SELECT datname, xact_commit FROM pg_stat_database WHERE datname = ANY($1)`, migrations.Services)
	if err == nil {
		for rows.Next() {
			var db string
			var n int64
			if rows.Scan(&db, &n) == nil {
				u.xacts[db] = n
			}
		}
		rows.Close()
	}
	_ = pool.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, (SELECT wal_sync FROM pg_stat_wal)`).Scan(&u.walByte, &u.walSync)
	return u
}

// waitStreaming waits until every decoder's slot is active.
func (fs *floorStack) waitStreaming(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for _, d := range fs.decoders {
		for {
			var active bool
			if err := fs.admin[d.db].QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, d.slot).Scan(&active); err != nil {
				return fmt.Errorf("reading slot %s: %w", d.slot, err)
			}
			if active {
				break
			}
			if err := d.exitErr(); err != nil {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("slot %s not streaming 30s after pg_recvlogical started", d.slot)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// catchUp writes a transactional logical message into every producing
// database and waits until each slot has confirmed it: everything
// committed before has been decoded and received. It returns how long
// that took.
func (fs *floorStack) catchUp(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	marks := map[string]pglogrepl.LSN{}
	for _, d := range fs.decoders {
		var lsn string
		if err := fs.admin[d.db].QueryRow(ctx, `SELECT pg_logical_emit_message(true, 'alpes-floor', 'caught up')::text`).Scan(&lsn); err != nil {
			return 0, fmt.Errorf("marking %s's WAL: %w", d.db, err)
		}
		mark, err := pglogrepl.ParseLSN(lsn)
		if err != nil {
			return 0, err
		}
		marks[d.slot] = mark
	}
	deadline := start.Add(2 * time.Minute)
	for _, d := range fs.decoders {
		for {
			var confirmed string
			if err := fs.admin[d.db].QueryRow(ctx, `SELECT coalesce(confirmed_flush_lsn::text, '0/0') FROM pg_replication_slots WHERE slot_name = $1`, d.slot).Scan(&confirmed); err != nil {
				return 0, fmt.Errorf("reading slot %s: %w", d.slot, err)
			}
			if lsn, err := pglogrepl.ParseLSN(confirmed); err == nil && lsn >= marks[d.slot] {
				break
			}
			if err := d.exitErr(); err != nil {
				return 0, err
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("slot %s did not confirm %s within 2 minutes (at %s)", d.slot, marks[d.slot], confirmed)
			}
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return time.Since(start), nil
}

// floorDecoder is one pg_recvlogical streaming a producing database's
// outbox to /dev/null, with the options the relay asks pgoutput for.
type floorDecoder struct {
	db, slot string
	cmd      *exec.Cmd
	output   bytes.Buffer
	exited   chan struct{}
	waitErr  error
}

// startFloorDecoder starts pg_recvlogical on slot in database db: binary
// pgoutput of the outbox's publication, logical messages included, a
// status update every second (the relay's StatusInterval) and no fsync of
// its output.
func startFloorDecoder(c *pgcluster.Cluster, db, slot string) (*floorDecoder, error) {
	d := &floorDecoder{db: db, slot: slot, exited: make(chan struct{})}
	d.cmd = exec.Command(filepath.Join(c.BinDir(), "pg_recvlogical"), "--start", "--slot", slot, "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names="+schema.Publication, "-o", "binary=true", "-o", "messages=true",
		"--status-interval", "1", "--fsync-interval", "0", "-f", "/dev/null", "-d", c.AdminDSN(db))
	d.cmd.Stdout, d.cmd.Stderr = &d.output, &d.output
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting pg_recvlogical on %s: %w", db, err)
	}
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	return d, nil
}

// exitErr is nil while pg_recvlogical runs, else why it stopped.
func (d *floorDecoder) exitErr() error {
	select {
	case <-d.exited:
		return fmt.Errorf("pg_recvlogical on %s exited: %v: %s", d.db, d.waitErr, strings.TrimSpace(d.output.String()))
	default:
		return nil
	}
}

// cpu is the CPU time pg_recvlogical has used so far.
func (d *floorDecoder) cpu() time.Duration {
	select {
	case <-d.exited:
		return d.cmd.ProcessState.UserTime() + d.cmd.ProcessState.SystemTime()
	default:
	}
	f, ok := procStat(d.cmd.Process.Pid)
	if !ok {
		return 0
	}
	return ticks(f, 11, 12)
}

// stop ends pg_recvlogical as Ctrl-C would, or kills it after 10 s.
func (d *floorDecoder) stop() error {
	select {
	case <-d.exited:
		return nil
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
		return fmt.Errorf("pg_recvlogical on %s did not stop on SIGINT", d.db)
	}
	return nil
}

// rowMismatches lists the tables whose count differs from what the orders
// written must have left, as "db.table: n rows, want m".
func (fr FloorRun) rowMismatches() []string {
	var bad []string
	for _, t := range slices.Sorted(maps.Keys(fr.WantRows)) {
		if fr.Rows[t] != fr.WantRows[t] {
			bad = append(bad, fmt.Sprintf("%s: %d rows, want %d", t, fr.Rows[t], fr.WantRows[t]))
		}
	}
	return bad
}
