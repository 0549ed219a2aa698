package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/apache/pulsar-client-go/pulsar"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/alpes/alpes/internal/pulsarslog"
	"github.com/alpes/alpes/outbox/eventmeta"
	"github.com/alpes/alpes/services/eventcatalog"
)

type tailCmd struct {
	Topic       string `arg:"" help:"Topic to read, e.g. persistent://alpes/orders/events.v1."`
	PulsarURL   string `help:"Pulsar service URL." default:"${pulsar_url}"`
	PulsarToken string `help:"Token to authenticate to Pulsar." placeholder:"TOKEN"`
	FromStart   bool   `help:"Read from the oldest message instead of new ones only."`
	Count       int    `help:"Stop after this many messages (0: until interrupted)."`
}

// Run reads the topic with a reader (no subscription is left behind) and
// prints each message: key, alpes properties, and the payload as JSON when
// its type is an alpes message.
func (c *tailCmd) Run(ctx context.Context, e env) error {
	opts := pulsar.ClientOptions{URL: c.PulsarURL, Logger: pulsarslog.New(e.log)}
	if c.PulsarToken != "" {
		opts.Authentication = pulsar.NewAuthenticationToken(c.PulsarToken)
	}
	client, err := pulsar.NewClient(opts)
	if err != nil {
		return fmt.Errorf("creating the Pulsar client: %w", err)
	}
	defer client.Close()
	start := pulsar.LatestMessageID()
	if c.FromStart {
		start = pulsar.EarliestMessageID()
	}
	reader, err := client.CreateReader(pulsar.ReaderOptions{Topic: c.Topic, StartMessageID: start})
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.Topic, err)
	}
	defer reader.Close()
	for n := 0; c.Count == 0 || n < c.Count; n++ {
		msg, err := reader.Next(ctx)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", c.Topic, err)
		}
		fmt.Fprintln(e.stdout, describe(msg))
	}
	return nil
}

func describe(msg pulsar.Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s key=%s", msg.ID(), msg.Key())
	props := msg.Properties()
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&b, " %s=%s", k, props[k])
	}
	b.WriteString("\n  ")
	m, err := eventcatalog.New(props[eventmeta.Type])
	if err == nil && proto.Unmarshal(msg.Payload(), m) == nil {
		b.WriteString(protojson.MarshalOptions{}.Format(m))
	} else {
		fmt.Fprintf(&b, "%q", msg.Payload())
	}
	return b.String()
}
