package pulsarstandalone

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/apache/pulsar-client-go/pulsar"

	"github.com/alpes/alpes/internal/pulsarslog"
)

// WaitReady returns once the Pulsar at serviceURL and adminURL really
// serves: the admin API lists the public/default namespace (standalone
// creates it after it says it is ready) and a message produced to a fresh
// topic there is consumed back. It polls until ctx ends.
func WaitReady(ctx context.Context, serviceURL, adminURL string) error {
	var last error
	for {
		if last = namespaceExists(ctx, adminURL, "public", "public/default"); last == nil {
			if last = roundTrip(ctx, serviceURL); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func namespaceExists(ctx context.Context, adminURL, tenant, namespace string) error {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, adminURL+"/admin/v2/namespaces/"+tenant, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("listing namespaces of %s: %s", tenant, resp.Status)
	}
	var names []string
	if err := json.NewDecoder(resp.Body).Decode(&names); err != nil {
		return fmt.Errorf("listing namespaces of %s: %w", tenant, err)
	}
	if !slices.Contains(names, namespace) {
		return fmt.Errorf("no namespace %s yet", namespace)
	}
	return nil
}

// roundTrip subscribes to a fresh topic, produces one message and receives
// it back.
func roundTrip(ctx context.Context, serviceURL string) error {
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	c, err := pulsar.NewClient(pulsar.ClientOptions{
		URL:               serviceURL,
		Logger:            pulsarslog.New(slog.New(slog.DiscardHandler)),
		OperationTimeout:  10 * time.Second,
		ConnectionTimeout: 5 * time.Second,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	b := make([]byte, 6)
	rand.Read(b)
	topic := "persistent://public/default/alpes-ready-" + hex.EncodeToString(b)
	cons, err := c.Subscribe(pulsar.ConsumerOptions{Topic: topic, SubscriptionName: "ready"})
	if err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	defer cons.Close()
	p, err := c.CreateProducer(pulsar.ProducerOptions{Topic: topic})
	if err != nil {
		return fmt.Errorf("creating a producer: %w", err)
	}
	defer p.Close()
	if _, err := p.Send(rctx, &pulsar.ProducerMessage{Payload: b}); err != nil {
		return fmt.Errorf("producing: %w", err)
	}
	m, err := cons.Receive(rctx)
	if err != nil {
		return fmt.Errorf("consuming: %w", err)
	}
	if string(m.Payload()) != string(b) {
		return errors.New("consumed another message than the one produced")
	}
	return cons.Ack(m)
}
