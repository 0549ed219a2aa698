package inbox_test

import (
	"errors"
	"testing"
	"time"

	"github.com/alpes/alpes/outbox/inbox"
)

func TestConfigIsValidated(t *testing.T) {
	e := newEnv(t)
	valid := func() inbox.Config { return e.config(effectRegistry()) }
	cases := map[string]func(*inbox.Config){
		"no client":           func(c *inbox.Config) { c.Client = nil },
		"no database":         func(c *inbox.Config) { c.DB = nil },
		"no registry":         func(c *inbox.Config) { c.Registry = nil },
		"empty registry":      func(c *inbox.Config) { c.Registry = inbox.NewRegistry() },
		"no subscription":     func(c *inbox.Config) { c.Subscription = "" },
		"no topics":           func(c *inbox.Config) { c.Topics = nil },
		"short topic name":    func(c *inbox.Config) { c.Topics = []string{"orders/events.v1"} },
		"topic twice":         func(c *inbox.Config) { c.Topics = []string{e.ordersTopic, e.ordersTopic} },
		"negative batch size": func(c *inbox.Config) { c.BatchSize = -1 },
		"negative attempts":   func(c *inbox.Config) { c.MaxAttempts = -1 },
		"backoff above cap": func(c *inbox.Config) {
			c.RetryBackoff, c.MaxBackoff = time.Second, time.Millisecond
		},
		"negative retention":   func(c *inbox.Config) { c.Sweep.Retention = -time.Hour },
		"negative sweep batch": func(c *inbox.Config) { c.Sweep.Batch = -1 },
		"retention below the minimum": func(c *inbox.Config) {
			c.Sweep.Retention = inbox.MinRetention - time.Second
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := valid()
			mutate(&cfg)
			if _, err := inbox.New(cfg); !errors.Is(err, inbox.ErrInvalidConfig) {
				t.Errorf("New: %v, want ErrInvalidConfig", err)
			}
		})
	}
	if _, err := inbox.New(valid()); err != nil {
		t.Errorf("New with a valid config: %v", err)
	}
	allowed := map[string]inbox.Sweep{
		"the minimum retention":          {Retention: inbox.MinRetention},
		"a short retention when allowed": {Retention: time.Minute, AllowShortRetention: true},
		"the sweep disabled":             {Interval: -1},
	}
	for name, sweep := range allowed {
		cfg := valid()
		cfg.Sweep = sweep
		if _, err := inbox.New(cfg); err != nil {
			t.Errorf("New with %s: %v", name, err)
		}
	}
}

func TestRegisteringATypeTwicePanics(t *testing.T) {
	reg := effectRegistry()
	defer func() {
		if recover() == nil {
			t.Error("second registration of OrderPlaced did not panic")
		}
	}()
	inbox.Handle(reg, recordEffect)
}
