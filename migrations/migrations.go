// Package migrations holds the database schema of every alpes service as goose
// SQL migrations, embedded in the binary so `alpes migrate` needs no files
// beside it: each service's own tables and seed data in its directory
// (migrations/<service>/NNNNN_name.sql), and the parts every service of a kind
// shares defined once in shared/ and rendered into each service's migrations
// (see shared.go).
//
// Each service owns its database: its tables, the transactional outbox and the
// publication the relay streams (bff, orders, payments), the inbox that makes
// applying a message idempotent (every consumer), its login role, and seed data.
package migrations

import (
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed bff/*.sql orders/*.sql payments/*.sql reporting/*.sql
var files embed.FS

// Services lists the services that own a database, in the order of the flow.
var Services = []string{"bff", "orders", "payments", "reporting"}

// Producers lists the services whose database has an outbox and the
// publication (schema.Publication), which the relay streams.
var Producers = []string{"bff", "orders", "payments"}

// RelayRole is the login the relay connects with: REPLICATION, not a superuser,
// allowed to read and delete outbox rows and nothing else.
const RelayRole = "alpes_relay"

// ServiceRole is the least-privileged login a service connects with.
func ServiceRole(service string) string { return "alpes_" + service }

// ErrUnknownService is returned for a service name with no migrations.
var ErrUnknownService = errors.New("unknown service")

// CheckService returns ErrUnknownService, naming the known services, unless
// service has migrations.
func CheckService(service string) error {
	if !slices.Contains(Services, service) {
		return fmt.Errorf("%w %q: want one of %s", ErrUnknownService, service, strings.Join(Services, ", "))
	}
	return nil
}

// FS returns the migration files of one service: its own and the shared
// parts rendered for it (see shared.go).
func FS(service string) (fs.FS, error) {
	if err := CheckService(service); err != nil {
		return nil, err
	}
	return serviceFS(service)
}

// NewProvider returns a goose Provider for one service's migrations on db.
// Runs are serialised across processes with a Postgres advisory lock, so
// several instances of a service may start and migrate at once.
func NewProvider(db *sql.DB, service string, opts ...goose.ProviderOption) (*goose.Provider, error) {
	fsys, err := FS(service)
	if err != nil {
		return nil, err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("creating migration lock: %w", err)
	}
	opts = append([]goose.ProviderOption{goose.WithSessionLocker(locker)}, opts...)
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading %s migrations: %w", service, err)
	}
	return p, nil
}
