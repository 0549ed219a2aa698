package main

import (
	"context"

	"github.com/alpes/alpes/internal/devstack"
)

type devCmd struct {
	PostgresPort   int    `help:"Port of the throwaway Postgres cluster on 127.0.0.1 (0 picks a free one)." default:"55432"`
	PostgresBinDir string `help:"Directory of initdb and postgres; found on PATH or in /usr/lib/postgresql/*/bin when empty."`
	DataDir        string `help:"Keep the cluster's files here instead of a temporary directory removed on exit."`
}

func (d *devCmd) Run(ctx context.Context, e env) error {
	return devstack.Run(ctx, devstack.Config{
		PostgresPort:   d.PostgresPort,
		PostgresBinDir: d.PostgresBinDir,
		DataDir:        d.DataDir,
		Out:            e.stdout,
		Logger:         e.log,
	})
}
