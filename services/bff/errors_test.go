package bff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// notSent is an error pgconn.SafeToRetry vouches for: nothing was sent.
type notSent struct{}

func (notSent) Error() string     { return "not sent" }
func (notSent) SafeToRetry() bool { return true }

// TestWriteErrorsSayWhetherTheOrderMayExist pins the distinction the client
// relies on: a 503 promises nothing was written, so only errors after which
// the order's batch certainly did not commit may become one.
func TestWriteErrorsSayWhetherTheOrderMayExist(t *testing.T) {
	for _, tc := range []struct {
		name         string
		err          error
		mayCommitted bool
		unreachable  bool
	}{
		{"the server cut the connection mid-answer", io.ErrUnexpectedEOF, true, true},
		{"the timeout ran out waiting for the answer", context.DeadlineExceeded, true, true},
		{"Postgres refused the batch", &pgconn.PgError{Code: "53100"}, false, false},
		{"Postgres refused a statement of the batch", &pgconn.PgError{Severity: "ERROR", Code: "23514"}, false, false},
		{"a wrapped refusal", fmt.Errorf("storing: %w", &pgconn.PgError{Code: "23514"}), false, false},
		// A FATAL ends the session, before the commit or after it.
		{"the session ended by an administrator", &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01"}, true, true},
		{"the session ended by a crash", &pgconn.PgError{Severity: "FATAL", Code: "57P02"}, true, true},
		{"a FATAL in the server's language", &pgconn.PgError{Severity: "FATALE", SeverityUnlocalized: "FATAL", Code: "XX000"}, true, false},
		{"a shutdown passed on as an ERROR", &pgconn.PgError{Severity: "ERROR", Code: "57P01"}, true, true},
		{"a connection exception", &pgconn.PgError{Severity: "ERROR", Code: "08006"}, true, true},
		// Nothing of the batch was sent.
		{"nothing sent", fmt.Errorf("storing: %w", notSent{}), false, false},
		{"a shutdown while preparing the statements", fmt.Errorf("storing: %w", pgx.ErrPreprocessingBatch{}), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mayHaveCommitted(tc.err); got != tc.mayCommitted {
				t.Errorf("mayHaveCommitted = %v, want %v", got, tc.mayCommitted)
			}
			if got := unreachable(tc.err); got != tc.unreachable {
				t.Errorf("unreachable = %v, want %v", got, tc.unreachable)
			}
		})
	}
	if !outOfResources(&pgconn.PgError{Code: "53100"}) || outOfResources(errors.New("53100")) {
		t.Error("outOfResources must recognise SQLSTATE class 53 from Postgres only")
	}
}
