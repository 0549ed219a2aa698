package pgtest

import (
	"context"
	"fmt"
	"time"

	"github.com/alpes/alpes/migrations"
)

// buildTemplate creates the template database of a service and migrates it up.
// Tests never connect to a template, so CREATE DATABASE … TEMPLATE can copy it.
func (h *harness) buildTemplate(name, service string) error {
	c, err := h.cluster()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := migrations.CreateAndMigrate(ctx, c.AdminDSN, name, service); err != nil {
		return fmt.Errorf("building the template of %s: %w", service, err)
	}
	return nil
}
