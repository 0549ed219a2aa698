package stack

import (
	"context"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/alpes/alpes/migrations"
)

// CreateDatabases creates each database of Databases unless it exists and
// migrates it up to its latest version, connected with dsnOf(database) as
// a superuser; log receives the migrations' progress. Each database gets
// two minutes.
func CreateDatabases(ctx context.Context, dsnOf func(database string) string, log *slog.Logger) error {
	for _, db := range Databases() {
		if err := createDatabase(ctx, dsnOf, db, log); err != nil {
			return err
		}
	}
	return nil
}

func createDatabase(ctx context.Context, dsnOf func(database string) string, db string, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return migrations.CreateAndMigrate(ctx, dsnOf, db, db, goose.WithSlog(log))
}
