// Command alpes runs every part of alpes: migrations, the local development
// stack and, as they arrive, the broker, the relay and the services.
// `alpes --help` lists the commands; every flag has an ALPES_… environment twin.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// One line: the error chain already says what was being done.
		fmt.Fprintln(os.Stderr, "alpes: "+strings.Join(strings.Fields(err.Error()), " "))
		os.Exit(1)
	}
}
