package bench

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/outbox/schema"
	"github.com/alpes/alpes/relay"
)

// drainRun writes one backlog into sys's orders outbox and drains it four
// ways (see Drain); run numbers the slots and rotates the drains' order.
func (r *runner) drainRun(ctx context.Context, sys *system, run int) (DrainRun, error) {
	n := r.opts.Sizes.Backlog
	dr := DrainRun{}
	orders := sys.admin[drainSource]

	// Stop the relay and move its slot to where the others will start, so
	// that all three drains read exactly the same WAL.
	slot, err := relaySlot(ctx, sys, drainSource)
	if err != nil {
		return dr, err
	}
	if err := sys.Relay.Terminate(10 * time.Second); err != nil {
		return dr, err
	}
	if err := waitSlotInactive(ctx, sys, slot); err != nil {
		return dr, err
	}
	textSlot, binarySlot := fmt.Sprintf("bench_text_%d", run), fmt.Sprintf("bench_binary_%d", run)
	if _, err := orders.Exec(ctx, `SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())`, slot); err != nil {
		return dr, fmt.Errorf("advancing the relay's slot: %w", err)
	}
	for _, s := range []string{textSlot, binarySlot} {
		if _, err := orders.Exec(ctx, `SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, s); err != nil {
			return dr, fmt.Errorf("creating slot %s: %w", s, err)
		}
	}
	defer func() {
		for _, s := range []string{textSlot, binarySlot} {
			_, _ = orders.Exec(context.WithoutCancel(ctx), `SELECT pg_drop_replication_slot($1) WHERE EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`, s)
		}
	}()
	// Debezium Server's slot starts where the others do; when it cannot
	// run, the run goes on without it and says why.
	dbzSlot, err := r.prepareDebezium(ctx, sys, run)
	if err != nil {
		dr.DebeziumError = debeziumNotMeasured(err)
	} else {
		defer func() {
			_, _ = orders.Exec(context.WithoutCancel(ctx), `SELECT pg_drop_replication_slot($1) WHERE EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`, dbzSlot)
		}()
	}
	end, err := writeBacklog(ctx, sys.Cluster.AdminDSN(drainSource), schema.OutboxTable, benchDrainTopic, n)
	if err != nil {
		return dr, err
	}
	dr.EndLSN = end.String()

	drains := map[string]func() error{
		"relay": func() (err error) {
			dr.Relay, dr.RelayStartupMillis, dr.RelayPerEntry, err = r.drainRelay(ctx, sys, end, n)
			return
		},
		"recvlogical-text": func() (err error) {
			dr.RecvText, err = r.drainRecvlogical(ctx, sys, textSlot, end, n, false)
			return
		},
		"recvlogical-binary": func() (err error) {
			dr.RecvBinary, err = r.drainRecvlogical(ctx, sys, binarySlot, end, n, true)
			return
		},
	}
	order := []string{"relay", "recvlogical-binary", "recvlogical-text"}
	if dbzSlot != "" {
		drains["debezium"] = func() error {
			d, err := r.drainDebezium(ctx, sys, dbzSlot, run, n)
			if err != nil {
				if ctx.Err() != nil {
					return err
				}
				dr.DebeziumError = debeziumNotMeasured(err)
				r.printf("   Debezium Server not measured: %s", dr.DebeziumError)
				return nil
			}
			dr.Debezium = d
			return nil
		}
		order = append(order, "debezium")
	}
	for range run % len(order) { // rotate, so that no drain always goes first
		order = append(order[1:], order[0])
	}
	dr.Order = order
	for _, name := range order {
		if err := drains[name](); err != nil {
			return dr, fmt.Errorf("%s drain: %w", name, err)
		}
	}
	if rest := dr.Relay.Seconds - dr.RelayStartupMillis/1000; rest > 0 {
		dr.RelayFromReady = float64(n) / rest
	}

	pollDSN := sys.Cluster.AdminDSN(pollDatabase)
	if _, err := writeBacklog(ctx, pollDSN, "poll_outbox", benchPollTopic, n); err != nil {
		return dr, err
	}
	before := sys.usage(ctx)
	start := time.Now()
	published, err := pollOutbox(ctx, pollDSN, sys.BrokerURL, r.opts.Sizes.PollBatch)
	wall := time.Since(start)
	if err != nil {
		return dr, fmt.Errorf("polling drain: %w", err)
	}
	dr.Poll = timing(before, sys.usage(ctx), wall, n)
	dr.Poll.CPUMicros["poller"] = dr.Poll.CPUMicros[componentLoad]
	delete(dr.Poll.CPUMicros, componentLoad)
	dr.Published = published
	conn, err := pgx.Connect(ctx, pollDSN)
	if err != nil {
		return dr, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM poll_outbox`).Scan(&dr.Left); err != nil {
		return dr, err
	}
	return dr, nil
}

// timing turns a drain's wall time and the usage around it into a DrainTiming.
func timing(before, after usage, wall time.Duration, n int) DrainTiming {
	t := DrainTiming{Seconds: wall.Seconds(), TxPerSec: perSecond(int64(n), wall), CPUMicros: map[string]float64{}}
	for _, name := range []string{"relay", "broker", componentPostgres, componentLoad} {
		t.CPUMicros[name] = micros(after.cpu[name]-before.cpu[name]) / float64(n)
	}
	return t
}

// drainRelay starts the relay and waits until it has confirmed end: its own
// confirmed position in GET /v1/lag, which moves with every receipt, not
// once per status interval. It returns the drain's timing, the relay's
// startup in ms and its messages per broker entry.
func (r *runner) drainRelay(ctx context.Context, sys *system, end pglogrepl.LSN, n int) (DrainTiming, float64, float64, error) {
	before := sys.usage(ctx)
	start := time.Now()
	if err := sys.Relay.Start(ctx); err != nil {
		return DrainTiming{}, 0, 0, err
	}
	startup := millis(time.Since(start))
	deadline := start.Add(10 * time.Minute)
	var last relay.SourceLag
	for {
		if done, err := relayConfirmed(ctx, sys, end, &last); err != nil {
			return DrainTiming{}, 0, 0, err
		} else if done {
			break
		}
		if time.Now().After(deadline) {
			return DrainTiming{}, 0, 0, errors.New("the relay did not drain the backlog within 10 minutes")
		}
		select {
		case <-ctx.Done():
			return DrainTiming{}, 0, 0, ctx.Err()
		case <-sys.Relay.Exited():
			return DrainTiming{}, 0, 0, fmt.Errorf("the relay exited while draining: %v\n%s", sys.Relay.ExitErr(), sys.Relay.LogTail(20))
		case <-time.After(5 * time.Millisecond):
		}
	}
	wall := time.Since(start)
	var perEntry float64
	if last.EntriesSent > 0 {
		// The relay was started for this drain: its counters are the drain's.
		perEntry = float64(last.MessagesPublished+last.DuplicatesDropped) / float64(last.EntriesSent)
	}
	return timing(before, sys.usage(ctx), wall, n), startup, perEntry, nil
}

// relayConfirmed reports whether the relay's drain source has confirmed end,
// and leaves the source's lag as read in last.
func relayConfirmed(ctx context.Context, sys *system, end pglogrepl.LSN, last *relay.SourceLag) (bool, error) {
	sources, err := sys.relayLag(ctx)
	if err != nil {
		return false, nil // not serving yet
	}
	for _, l := range sources {
		if l.Source != drainSource {
			continue
		}
		*last = l
		lsn, err := pglogrepl.ParseLSN(l.ConfirmedFlushLSN)
		return err == nil && l.State == relay.StateStreaming && lsn >= end, nil
	}
	return false, fmt.Errorf("the relay serves no source %q", drainSource)
}

// drainRecvlogical runs pg_recvlogical from slot to end, writing to
// /dev/null, with the relay's pgoutput options (binary when asked).
func (r *runner) drainRecvlogical(ctx context.Context, sys *system, slot string, end pglogrepl.LSN, n int, binary bool) (DrainTiming, error) {
	args := []string{"--start", "--slot", slot, "--no-loop",
		"-o", "proto_version=1", "-o", "publication_names=" + schema.Publication}
	if binary {
		args = append(args, "-o", "binary=true")
	}
	args = append(args, "-f", "/dev/null", "--endpos", end.String(), "-d", sys.Cluster.AdminDSN(drainSource))
	cmd := exec.CommandContext(ctx, filepath.Join(sys.Cluster.BinDir(), "pg_recvlogical"), args...)
	before := sys.usage(ctx)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		return DrainTiming{}, fmt.Errorf("pg_recvlogical: %w: %s", err, strings.TrimSpace(string(out)))
	}
	t := timing(before, sys.usage(ctx), wall, n)
	delete(t.CPUMicros, "relay")
	delete(t.CPUMicros, "broker")
	delete(t.CPUMicros, componentLoad)
	t.CPUMicros["pg_recvlogical"] = micros(cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()) / float64(n)
	return t, nil
}

func relaySlot(ctx context.Context, sys *system, source string) (string, error) {
	sources, err := sys.relayLag(ctx)
	if err != nil {
		return "", err
	}
	for _, l := range sources {
		if l.Source == source {
			return l.Slot, nil
		}
	}
	return "", fmt.Errorf("the relay serves no source %q", source)
}

func waitSlotInactive(ctx context.Context, sys *system, slot string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var active bool
		if err := sys.admin[drainSource].QueryRow(ctx, `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active); err != nil {
			return fmt.Errorf("reading slot %s: %w", slot, err)
		}
		if !active {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("slot %s still active 30s after the relay stopped", slot)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
