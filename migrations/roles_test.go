package migrations_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/alpes/alpes/internal/pgtest"
	"github.com/alpes/alpes/migrations"
	"github.com/alpes/alpes/outbox/schema"
)

const insufficientPrivilege = "42501"

func TestRelayRoleIsNotSuperuser(t *testing.T) {
	db := pgtest.New(t, "orders")
	var super, repl, login bool
	err := db.Pool(t).QueryRow(context.Background(),
		`SELECT rolsuper, rolreplication, rolcanlogin FROM pg_roles WHERE rolname = $1`, migrations.RelayRole).
		Scan(&super, &repl, &login)
	if err != nil {
		t.Fatal(err)
	}
	if super || !repl || !login {
		t.Errorf("%s: superuser=%t replication=%t login=%t; want a non-superuser replication login", migrations.RelayRole, super, repl, login)
	}
}

// TestRelayRoleStreamsTheOutbox opens a logical replication connection as the
// relay role and sees an outbox insert arrive through the publication.
func TestRelayRoleStreamsTheOutbox(t *testing.T) {
	for _, service := range migrations.Producers {
		t.Run(service, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db := pgtest.New(t, service)

			conn, err := pgconn.Connect(ctx, db.ReplicationDSN(migrations.RelayRole))
			if err != nil {
				t.Fatalf("opening a replication connection as %s: %v", migrations.RelayRole, err)
			}
			defer conn.Close(context.Background())
			if _, err := pglogrepl.IdentifySystem(ctx, conn); err != nil {
				t.Fatalf("IDENTIFY_SYSTEM: %v", err)
			}
			slot, err := pglogrepl.CreateReplicationSlot(ctx, conn, db.Name, "pgoutput",
				pglogrepl.CreateReplicationSlotOptions{Temporary: true})
			if err != nil {
				t.Fatalf("creating a slot: %v", err)
			}
			start, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
			if err != nil {
				t.Fatal(err)
			}
			err = pglogrepl.StartReplication(ctx, conn, slot.SlotName, start, pglogrepl.StartReplicationOptions{
				PluginArgs: []string{"proto_version '1'", fmt.Sprintf("publication_names '%s'", schema.Publication)},
			})
			if err != nil {
				t.Fatalf("starting replication: %v", err)
			}

			writer := db.PoolAs(t, migrations.ServiceRole(service))
			if _, err := writer.Exec(ctx,
				`INSERT INTO outbox (id, topic, aggregate_id, type, payload)
				 VALUES (gen_random_uuid(), 'persistent://alpes/test/events.v1', 'order-1', 'alpes.test.v1.Probe', '\x0a01')`); err != nil {
				t.Fatalf("inserting into the outbox as the service role: %v", err)
			}

			relation := receiveInsert(ctx, t, conn)
			if relation != "outbox" {
				t.Errorf("insert streamed for relation %q, want outbox", relation)
			}
		})
	}
}

// receiveInsert reads the replication stream until an insert arrives and
// returns the name of its relation.
func receiveInsert(ctx context.Context, t *testing.T, conn *pgconn.PgConn) string {
	t.Helper()
	relations := map[uint32]string{}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("receiving from the replication stream: %v", err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue // keepalives and the like
		}
		xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			t.Fatal(err)
		}
		logical, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			t.Fatal(err)
		}
		switch m := logical.(type) {
		case *pglogrepl.RelationMessage:
			relations[m.RelationID] = m.RelationName
		case *pglogrepl.InsertMessage:
			return relations[m.RelationID]
		}
	}
}

// TestRolesArePrivilegedNoFurtherThanNeeded checks what each login may and
// may not do: the relay reads and sweeps the outbox and touches nothing else;
// a service only appends to its outbox.
func TestRolesArePrivilegedNoFurtherThanNeeded(t *testing.T) {
	type check struct {
		service, role, sql string
		allowed            bool
	}
	relay, orders := migrations.RelayRole, migrations.ServiceRole("orders")
	checks := []check{
		{"orders", relay, `SELECT count(*) FROM outbox`, true},
		{"orders", relay, `DELETE FROM outbox WHERE created_at < now() - interval '1 day'`, true},
		{"orders", relay, `INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES (gen_random_uuid(), 't', 'k', 'x', '')`, false},
		{"orders", relay, `UPDATE outbox SET topic = 'x'`, false},
		{"orders", relay, `SELECT count(*) FROM orders`, false},
		{"orders", relay, `INSERT INTO orders (id, customer_id, address, status, total_minor, currency, requested_at, placed_at)
		                   VALUES (gen_random_uuid(), 'c', 'a', 'placed', 1, 'EUR', now(), now())`, false},
		{"orders", relay, `UPDATE products SET price_minor = 1`, false},
		{"orders", relay, `INSERT INTO inbox (event_id, topic, type) VALUES (gen_random_uuid(), 't', 'x')`, false},
		{"bff", relay, `INSERT INTO order_requests (order_id, customer_id, address, lines, requested_at) VALUES (gen_random_uuid(), 'c', 'a', '[]', now())`, false},
		{"payments", relay, `SELECT count(*) FROM payments`, false},
		{"orders", orders, `INSERT INTO outbox (id, topic, aggregate_id, type, payload) VALUES (gen_random_uuid(), 't', 'k', 'x', '')`, true},
		{"orders", orders, `UPDATE outbox SET topic = 'x'`, false},
		{"orders", orders, `DELETE FROM outbox`, false},
		{"orders", orders, `SELECT count(*) FROM products`, true},
		{"orders", orders, `DELETE FROM goose_db_version`, false},
	}
	dbs := map[string]*pgtest.DB{}
	for _, c := range checks {
		if dbs[c.service] == nil {
			dbs[c.service] = pgtest.New(t, c.service)
		}
	}
	for _, c := range checks {
		t.Run(c.service+"/"+c.role+"/"+c.sql[:min(len(c.sql), 40)], func(t *testing.T) {
			ctx := context.Background()
			conn, err := pgconn.Connect(ctx, dbs[c.service].DSNAs(c.role))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, c.sql).ReadAll()
			var pgErr *pgconn.PgError
			denied := errors.As(err, &pgErr) && pgErr.Code == insufficientPrivilege
			switch {
			case c.allowed && err != nil:
				t.Errorf("want allowed, got %v", err)
			case !c.allowed && !denied:
				t.Errorf("want permission denied (%s), got %v", insufficientPrivilege, err)
			}
		})
	}
}
