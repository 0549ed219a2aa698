package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alpes/alpes/lab/procstack"
	"github.com/alpes/alpes/migrations"
)

// beginRestart stops Postgres, as a crash would (Crash) or with a fast
// shutdown (FastRestart); healing starts it again and waits until it
// accepts connections, and, once healed, wait until the relay streams every slot again
// (walsenders_ended: the walsenders the stop ended).
func (j *injector) beginRestart(ctx context.Context, f Fault) (*strike, error) {
	before, err := walsenders(ctx, j.s)
	if err != nil {
		return nil, err
	}
	if err := j.s.Cluster.Down(f.Action == Crash); err != nil {
		return nil, err
	}
	st := &strike{heal: j.s.Cluster.Up}
	st.afterHeal = j.walsendersReplaced(st, before)
	return st, nil
}

// beginTerminate ends Postgres sessions with pg_terminate_backend: the
// walsenders of the relay's slots, or every session the services' roles
// hold. For walsenders, afterHeal waits until every slot streams again under
// a new process id.
func (j *injector) beginTerminate(ctx context.Context, f Fault) (*strike, error) {
	st := &strike{heal: func(context.Context) error { return nil }, observed: map[string]int64{}}
	switch f.Target {
	case Walsenders:
		before, err := walsenders(ctx, j.s)
		if err != nil {
			return nil, err
		}
		n, err := terminate(ctx, j.s, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_replication`)
		if err != nil {
			return nil, err
		}
		st.observed["walsenders_terminated"] = n
		st.afterHeal = j.walsendersReplaced(st, before)
	case Sessions:
		var roles []string
		for _, service := range migrations.Services {
			roles = append(roles, migrations.ServiceRole(service))
		}
		n, err := terminate(ctx, j.s, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE usename = ANY($1) AND backend_type = 'client backend'`, roles)
		if err != nil {
			return nil, err
		}
		st.observed["sessions_terminated"] = n
	default:
		return nil, fmt.Errorf("unknown fault %q", f)
	}
	return st, nil
}

// terminate runs a query that ends sessions and returns how many it ended,
// as the superuser, straight to Postgres (never through a fault proxy).
func terminate(ctx context.Context, s *procstack.Stack, sql string, args ...any) (int64, error) {
	var n int64
	err := asAdmin(ctx, s, func(conn *pgx.Conn) error { return conn.QueryRow(ctx, sql, args...).Scan(&n) })
	if err != nil {
		return 0, fmt.Errorf("terminating sessions: %w", err)
	}
	return n, nil
}

// asAdmin runs fn on a connection of the superuser, straight to Postgres.
func asAdmin(ctx context.Context, s *procstack.Stack, fn func(*pgx.Conn) error) error {
	return asAdminOn(ctx, s, "postgres", fn)
}

// asAdminOn is asAdmin on database.
func asAdminOn(ctx context.Context, s *procstack.Stack, database string, fn func(*pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.Cluster.AdminDSN(database))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(conn)
}

// walsenders are the process ids of the walsenders streaming the relay's
// slots, by slot; a slot nobody streams is absent.
func walsenders(ctx context.Context, s *procstack.Stack) (map[string]int32, error) {
	pids := map[string]int32{}
	err := asAdmin(ctx, s, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT slot_name, active_pid FROM pg_replication_slots WHERE slot_type = 'logical' AND active_pid IS NOT NULL`)
		if err != nil {
			return err
		}
		var slot string
		var pid int32
		_, err = pgx.ForEachRow(rows, []any{&slot, &pid}, func() error { pids[slot] = pid; return nil })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading the walsenders: %w", err)
	}
	return pids, nil
}

// walsendersReplaced is an afterHeal check: it waits until every relay slot is
// streamed again and records, as walsenders_ended, how many of the
// walsenders of before are gone.
func (j *injector) walsendersReplaced(st *strike, before map[string]int32) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for {
			now, err := walsenders(ctx, j.s)
			if err == nil && len(now) >= len(migrations.Producers) {
				ended := int64(0)
				for slot, pid := range before {
					if now[slot] != pid {
						ended++
					}
				}
				if st.observed == nil {
					st.observed = map[string]int64{}
				}
				st.observed["walsenders_ended"] = ended
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the relay's slots are not all streamed again (%v streamed; %v)", slices.Sorted(maps.Keys(now)), err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}
