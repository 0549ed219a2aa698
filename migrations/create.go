package migrations

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// MaintenanceDatabase is the database CreateDatabase connects to in order
// to create another: every cluster has it.
const MaintenanceDatabase = "postgres"

// CreateDatabase creates the database name unless it exists. dsnOf gives a
// connection string to a database by name, as a role allowed to create
// databases; CreateDatabase connects with dsnOf(MaintenanceDatabase).
func CreateDatabase(ctx context.Context, dsnOf func(database string) string, name string) error {
	admin, err := pgx.Connect(ctx, dsnOf(MaintenanceDatabase))
	if err != nil {
		return fmt.Errorf("connecting to postgres to create database %s: %w", name, err)
	}
	defer admin.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("looking up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// CreateAndMigrate creates the database name unless it exists (see
// CreateDatabase) and migrates it up to the latest version of service's
// migrations, connected with dsnOf(name) as a role allowed to run them. A
// service's own database is named after the service; a test's template
// database is not. opts go to NewProvider, e.g. goose.WithSlog.
func CreateAndMigrate(ctx context.Context, dsnOf func(database string) string, name, service string, opts ...goose.ProviderOption) error {
	if err := CheckService(service); err != nil {
		return err
	}
	if err := CreateDatabase(ctx, dsnOf, name); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(dsnOf(name))
	if err != nil {
		return fmt.Errorf("reading the connection string of database %s: %w", name, err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := NewProvider(db, service, opts...)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating database %s to %s's latest version: %w", name, service, err)
	}
	return nil
}
