package inbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestIsTransientClassifiesBySQLSTATEClass(t *testing.T) {
	pg := func(code string) error { return &pgconn.PgError{Code: code, Message: "x"} }
	cases := []struct {
		name string
		err  error
		want bool
	}{
		// Faults that heal: retried without limit.
		{"08006 connection failure", pg("08006"), true},
		{"08001 cannot establish connection", pg("08001"), true},
		{"40001 serialization failure", pg("40001"), true},
		{"40P01 deadlock", pg("40P01"), true},
		{"53100 disk full", pg("53100"), true},
		{"53300 too many connections", pg("53300"), true},
		{"57014 query cancelled or timed out", pg("57014"), true},
		{"57P01 admin shutdown", pg("57P01"), true},
		{"57P02 crash shutdown", pg("57P02"), true},
		{"57P03 cannot connect now", pg("57P03"), true},
		{"58030 I/O error", pg("58030"), true},
		{"58000 system error", pg("58000"), true},
		{"25006 read-only transaction", pg("25006"), true},
		{"55P03 lock not available", pg("55P03"), true},
		{"wrapped by a handler with %w", fmt.Errorf("crediting the order: %w", pg("25006")), true},
		{"connect error", &pgconn.ConnectError{}, true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{"connection cut short", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), true},
		{"closed network connection", net.ErrClosed, true},
		{"deadline on the database", fmt.Errorf("querying: %w", context.DeadlineExceeded), true},

		// The message's fault: bounded retries, then the dead-letter topic.
		{"22P02 invalid text representation", pg("22P02"), false},
		{"22003 numeric value out of range", pg("22003"), false},
		{"23505 unique violation", pg("23505"), false},
		{"23503 foreign key violation", pg("23503"), false},
		{"42P01 undefined table", pg("42P01"), false},
		{"42501 insufficient privilege", pg("42501"), false},
		{"42601 syntax error", pg("42601"), false},
		{"25P02 in failed transaction", pg("25P02"), false},
		{"25001 active transaction", pg("25001"), false},
		{"55000 object not in prerequisite state", pg("55000"), false},
		{"P0001 raised by a function", pg("P0001"), false},
		{"XX000 internal error", pg("XX000"), false},
		{"malformed code", pg("5"), false},
		{"transient code hidden by %v", fmt.Errorf("crediting the order: %v", pg("25006")), false},
		{"handler's own error", errors.New("order not found"), false},
		{"parked by the handler", fmt.Errorf("%w: %w", ErrPark, pg("25006")), false},
		{"transaction closed by the handler", pgx.ErrTxClosed, false},
		{"cancelled", context.Canceled, false},
		{"nil", nil, false},
	}
	for _, c := range cases {
		if got := isTransient(c.err); got != c.want {
			t.Errorf("%s: isTransient = %v, want %v", c.name, got, c.want)
		}
	}
}
