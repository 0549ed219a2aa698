package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/alpes/alpes/migrations"
)

type migrateCmd struct {
	Service string        `arg:"" help:"Service whose database to migrate: bff, orders, payments or reporting."`
	Action  string        `arg:"" optional:"" enum:"up,down,status" default:"up" help:"up (to the latest, or --to), down (one step, or to --to) or status."`
	DSN     string        `name:"dsn" required:"" help:"Postgres connection string of the service's database, e.g. postgres://user@host:5432/orders."`
	To      int64         `help:"Target version for up and down (0 with down undoes everything)." default:"-1"`
	Timeout time.Duration `help:"Give up after this long." default:"5m"`
}

func (m *migrateCmd) Run(ctx context.Context, e env) error {
	if err := migrations.CheckService(m.Service); err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig(m.DSN)
	if err != nil {
		return fmt.Errorf("reading --dsn: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connecting to %s database %q on %s: %w", m.Service, cfg.Database, cfg.Host, err)
	}
	p, err := migrations.NewProvider(db, m.Service, goose.WithSlog(e.log))
	if err != nil {
		return err
	}
	switch m.Action {
	case "status":
		return m.printStatus(ctx, e, p)
	case "down":
		return m.down(ctx, e, p)
	default:
		return m.up(ctx, e, p)
	}
}

func (m *migrateCmd) up(ctx context.Context, e env, p *goose.Provider) error {
	var err error
	var results []*goose.MigrationResult
	if m.To >= 0 {
		results, err = p.UpTo(ctx, m.To)
	} else {
		results, err = p.Up(ctx)
	}
	printResults(e, results)
	if err != nil {
		return fmt.Errorf("migrating %s up: %w", m.Service, err)
	}
	return m.printVersion(ctx, e, p)
}

func (m *migrateCmd) down(ctx context.Context, e env, p *goose.Provider) error {
	var results []*goose.MigrationResult
	var err error
	if m.To >= 0 {
		results, err = p.DownTo(ctx, m.To)
	} else {
		var r *goose.MigrationResult
		if r, err = p.Down(ctx); r != nil {
			results = append(results, r)
		}
	}
	printResults(e, results)
	if err != nil {
		return fmt.Errorf("migrating %s down: %w", m.Service, err)
	}
	return m.printVersion(ctx, e, p)
}

func (m *migrateCmd) printVersion(ctx context.Context, e env, p *goose.Provider) error {
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("reading %s schema version: %w", m.Service, err)
	}
	_, err = fmt.Fprintf(e.stdout, "%s: schema version %d (latest %d)\n", m.Service, current, target)
	return err
}

func (m *migrateCmd) printStatus(ctx context.Context, e env, p *goose.Provider) error {
	statuses, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("reading %s migration status: %w", m.Service, err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tMIGRATION")
	for _, s := range statuses {
		applied := "-"
		if !s.AppliedAt.IsZero() {
			applied = s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", s.Source.Version, s.State, applied, s.Source.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return m.printVersion(ctx, e, p)
}

func printResults(e env, results []*goose.MigrationResult) {
	for _, r := range results {
		verb := "applied"
		if r.Direction == "down" {
			verb = "rolled back"
		}
		fmt.Fprintf(e.stdout, "%s %s (%s)\n", verb, r.Source.Path, r.Duration.Round(time.Millisecond))
	}
}
