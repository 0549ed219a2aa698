package pgtest

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/alpes/alpes/migrations"
)

// buildTemplate creates the template database of a service and migrates it up.
// Tests never connect to a template, so CREATE DATABASE … TEMPLATE can copy it.
func (h *harness) buildTemplate(name, service string) error {
	if err := migrations.CheckService(service); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := h.adminConn(ctx)
	if err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("creating template database: %w", err)
	}
	cfg, err := pgx.ParseConfig(h.c.AdminDSN(name))
	if err != nil {
		return err
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := migrations.NewProvider(db, service)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating template: %w", err)
	}
	return nil
}
