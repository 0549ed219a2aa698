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
	ctx, stop := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal asks for a clean stop; from then on the default
		// handling is back, so a second one ends the process at once.
		<-signals
		signal.Reset(os.Interrupt, syscall.SIGTERM)
		fmt.Fprintln(os.Stderr, "alpes: stopping; press Ctrl-C again to quit at once")
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// One line: the error chain already says what was being done.
		fmt.Fprintln(os.Stderr, "alpes: "+strings.Join(strings.Fields(err.Error()), " "))
		os.Exit(1)
	}
}
