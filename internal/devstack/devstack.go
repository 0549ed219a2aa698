// Package devstack runs alpes on one machine for development: a throwaway
// Postgres cluster with a migrated database per service, and, as they are
// built, the embedded broker, the relay and the services. `alpes dev` is a
// thin command over Run.
package devstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/alpes/alpes/internal/pgcluster"
	"github.com/alpes/alpes/migrations"
)

// Config configures the development stack.
type Config struct {
	// PostgresPort is the port of the throwaway cluster on 127.0.0.1; 0 picks a free one.
	PostgresPort int
	// PostgresBinDir holds initdb and postgres; empty means discover them.
	PostgresBinDir string
	// DataDir keeps the cluster's files; empty means a temporary directory,
	// removed on exit.
	DataDir string
	// Out receives the summary of what runs where.
	Out io.Writer
	// Logger receives progress messages.
	Logger *slog.Logger
}

// Run starts the stack, prints where everything is, and runs until ctx ends;
// then it stops everything it started and removes its temporary files.
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("starting postgres")
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{
		BinDir: cfg.PostgresBinDir,
		Dir:    cfg.DataDir,
		Port:   cfg.PostgresPort,
		Logger: log,
	})
	if err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	defer func() {
		log.Info("stopping postgres")
		if err := cluster.Stop(); err != nil {
			log.Error("stopping postgres", "err", err)
		}
	}()

	for _, service := range migrations.Services {
		if err := createAndMigrate(ctx, cluster, service, log); err != nil {
			return err
		}
	}
	printSummary(cfg.Out, cluster)
	<-ctx.Done()
	return nil
}

// createAndMigrate creates the service's database (named after the service)
// and migrates it to the latest version.
func createAndMigrate(ctx context.Context, c *pgcluster.Cluster, service string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, c.AdminDSN("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to postgres: %w", err)
	}
	defer admin.Close(context.Background())
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, service).Scan(&exists); err != nil {
		return fmt.Errorf("looking up database %s: %w", service, err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{service}.Sanitize()); err != nil {
			return fmt.Errorf("creating database %s: %w", service, err)
		}
	}
	cfg, err := pgx.ParseConfig(c.AdminDSN(service))
	if err != nil {
		return err
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	p, err := migrations.NewProvider(db, service, goose.WithSlog(log))
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating %s: %w", service, err)
	}
	return nil
}

func printSummary(w io.Writer, c *pgcluster.Cluster) {
	if w == nil {
		return
	}
	fmt.Fprintln(w, "alpes dev is running. Press Ctrl-C to stop and clean up.")
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tSERVICE LOGIN\tADMIN (superuser)")
	for _, service := range migrations.Services {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", service, c.DSN(migrations.ServiceRole(service), service), c.AdminDSN(service))
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Try: psql '%s' -c 'SELECT sku, name, price_minor FROM products'\n", c.AdminDSN("orders"))
}
