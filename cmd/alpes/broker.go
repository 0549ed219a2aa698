package main

import (
	"context"
	"time"

	"github.com/alpes/alpes/broker"
)

type brokerCmd struct {
	Addr            string        `help:"Listen address of the Pulsar binary protocol." default:"${broker_addr}"`
	AdminAddr       string        `help:"Listen address of the admin HTTP API." default:"${broker_admin_addr}"`
	AdvertisedAddr  string        `help:"host:port the broker tells clients to connect to (behind a proxy or port mapping); default: the listen address." placeholder:"HOST:PORT"`
	Data            string        `help:"Directory that makes the broker durable; in memory when empty." placeholder:"DIR"`
	Dedup           bool          `help:"Broker-side deduplication for namespaces without a policy of their own." default:"true" negatable:""`
	AuthToken       string        `help:"Require this token from clients (AuthenticationToken) and admin requests." placeholder:"TOKEN"`
	MaxMessageSize  int           `help:"Largest message accepted, in bytes." default:"5242880"`
	DedupInactivity time.Duration `help:"How long a producer name's deduplication state outlives its last producer (Pulsar's brokerDeduplicationProducerInactivityTimeoutMinutes)." default:"6h"`
	// Pulsar's subscriptionKeySharedUseConsistentHashing=false and
	// subscriptionKeySharedConsistentHashingReplicaPoints.
	KeySharedAutoSplit  bool `help:"Key_Shared subscriptions split the hash range in halves between consumers instead of using a consistent-hash ring."`
	KeySharedRingPoints int  `help:"Points per consumer on a Key_Shared subscription's consistent-hash ring." default:"100"`
}

func (c *brokerCmd) Run(ctx context.Context, e env) error {
	cfg := broker.DefaultConfig()
	cfg.ServiceAddr, cfg.AdminAddr = c.Addr, c.AdminAddr
	cfg.AdvertisedAddr = c.AdvertisedAddr
	cfg.DataDir = c.Data
	cfg.Deduplication = c.Dedup
	cfg.AuthToken = c.AuthToken
	cfg.MaxMessageSize = c.MaxMessageSize
	cfg.DeduplicationInactivityTimeout = c.DedupInactivity
	cfg.KeySharedAutoSplitRanges = c.KeySharedAutoSplit
	cfg.KeySharedRingPoints = c.KeySharedRingPoints
	cfg.Logger = e.log
	b, err := broker.Start(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	return b.Close()
}
