package broker_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/apache/pulsar-client-go/pulsar"
)

func TestAdminHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if code := e.admin(t, "GET", "/admin/v2/brokers/health", "", nil); code != http.StatusOK {
		t.Fatalf("health: %d", code)
	}
}

func TestAdminTopicLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tp := topic(t)
	path := adminPath(tp)
	if code := e.admin(t, "PUT", path, "", nil); code != http.StatusNoContent {
		t.Fatalf("create: %d", code)
	}
	if code := e.admin(t, "PUT", path, "", nil); code != http.StatusConflict {
		t.Fatalf("create again: %d, want 409", code)
	}
	var names []string
	e.admin(t, "GET", "/admin/v2/persistent/public/default", "", &names)
	if !slices.Contains(names, tp) {
		t.Fatalf("list %v lacks %s", names, tp)
	}
	if code := e.admin(t, "DELETE", path, "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code := e.admin(t, "DELETE", path, "", nil); code != http.StatusNotFound {
		t.Fatalf("delete again: %d, want 404", code)
	}
	if code := e.admin(t, "GET", path+"/stats", "", nil); code != http.StatusNotFound {
		t.Fatalf("stats of a deleted topic: %d, want 404", code)
	}
}

func TestPartitionedTopic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tp := topic(t)
	if code := e.admin(t, "PUT", adminPath(tp)+"/partitions", "3", nil); code != http.StatusNoContent {
		t.Fatalf("create partitioned: %d", code)
	}
	var meta struct{ Partitions int }
	e.admin(t, "GET", adminPath(tp)+"/partitions", "", &meta)
	if meta.Partitions != 3 {
		t.Fatalf("partitions %d, want 3", meta.Partitions)
	}
	c := e.client(t)
	parts, err := c.TopicPartitions(tp)
	if err != nil || len(parts) != 3 {
		t.Fatalf("client sees partitions %v, %v", parts, err)
	}
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	const n = 30
	for i := range n {
		send(t, p, &pulsar.ProducerMessage{Key: fmt.Sprint("k", i), Payload: []byte(itoa(i))})
	}
	seen := map[string]bool{}
	partitions := map[string]bool{}
	for len(seen) < n {
		m := receive(t, cs)
		seen[string(m.Payload())] = true
		partitions[m.Topic()] = true
		cs.Ack(m)
	}
	if len(partitions) < 2 {
		t.Fatalf("30 keys all went to %v", partitions)
	}
	var st topicStats
	if code := e.admin(t, "GET", adminPath(tp)+"/partitioned-stats", "", &st); code != http.StatusOK || st.MsgInCounter != n {
		t.Fatalf("partitioned stats (%d): %+v", code, st)
	}
}

func TestTopicStatsBacklogAndUnacked(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", Type: pulsar.Shared,
		Name: "worker-1", AckWithResponse: true})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	send(t, p, payloads("m-", 5)...)
	for range 2 {
		if err := cs.Ack(receive(t, cs)); err != nil {
			t.Fatal(err)
		}
	}
	var st topicStats
	e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
	s := st.Subscriptions["s"]
	if s.MsgBacklog != 3 || len(s.Consumers) != 1 || s.Consumers[0].ConsumerName != "worker-1" || len(st.Publishers) != 1 {
		t.Fatalf("stats %+v", st)
	}
	// The three unacknowledged messages are pushed to the consumer's
	// queue, which it has room for (Pulsar dispatches them in the
	// background: wait until it has).
	waitFor(t, "3 unacknowledged messages pushed to the consumer", func() bool {
		e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
		s = st.Subscriptions["s"]
		return s.UnackedMessages == 3 && len(s.Consumers) == 1 && s.Consumers[0].UnackedMessages == 3
	})
	// The embedded broker computes rates every second (Pulsar every minute
	// by default, too slow to wait for here).
	if e.broker != nil {
		waitFor(t, "a non-zero msgRateOut", func() bool {
			e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
			return st.Subscriptions["s"].MsgRateOut > 0
		})
	}
}

func TestAdminTokenAuthentication(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.AuthToken = "s3cret"
	e := startBroker(t, cfg)
	if code := e.admin(t, "GET", "/admin/v2/persistent/public/default", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("without token: %d, want 401", code)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.adminURL+"/admin/v2/persistent/public/default", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("with token: %d", resp.StatusCode)
	}
}

func TestDeleteTopicWithConnectedClients(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	tp := topic(t)
	subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s"})
	if code := e.admin(t, "DELETE", adminPath(tp), "", nil); code != http.StatusPreconditionFailed {
		t.Fatalf("delete with a consumer: %d, want 412", code)
	}
	if code := e.admin(t, "DELETE", adminPath(tp)+"?force=true", "", nil); code != http.StatusNoContent {
		t.Fatalf("forced delete: %d", code)
	}
}

func TestInMemoryTopicDropsAcknowledgedEntries(t *testing.T) {
	t.Parallel()
	e := startBroker(t, testConfig())
	c := e.client(t)
	tp := topic(t)
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "s", AckWithResponse: true})
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	const n, size = 6000, 1000
	payload := make([]byte, size)
	for range n {
		p.SendAsync(t.Context(), &pulsar.ProducerMessage{Payload: payload}, nil)
	}
	if err := p.FlushWithCtx(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := cs.Ack(receive(t, cs)); err != nil {
			t.Fatal(err)
		}
	}
	var st struct {
		StorageSize int64 `json:"storageSize"`
	}
	e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
	// The broker keeps the newest 1000 entries, and trims in steps of 1024.
	if st.StorageSize > 2100*size {
		t.Fatalf("storage holds %d bytes after all %d messages were acknowledged", st.StorageSize, n)
	}
}

func TestAdminSubscriptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client(t)
	tp := topic(t)
	sub := adminPath(tp) + "/subscription/"
	p := producer(t, c, pulsar.ProducerOptions{Topic: tp, DisableBatching: true})
	send(t, p, payloads("before-", 2)...)

	// Created ahead of any consumer, at the earliest message: nothing is
	// lost to a consumer that comes later.
	if code := e.admin(t, "PUT", sub+"early", `{"ledgerId":-1,"entryId":-1}`, nil); code != http.StatusNoContent {
		t.Fatalf("create at earliest: %d", code)
	}
	if code := e.admin(t, "PUT", sub+"late", "", nil); code != http.StatusNoContent {
		t.Fatalf("create at latest: %d", code)
	}
	if code := e.admin(t, "PUT", sub+"late", "", nil); code != http.StatusConflict {
		t.Fatalf("create twice: %d, want 409", code)
	}
	var names []string
	e.admin(t, "GET", adminPath(tp)+"/subscriptions", "", &names)
	slices.Sort(names) // Pulsar lists them in no particular order
	if !slices.Equal(names, []string{"early", "late"}) {
		t.Fatalf("subscriptions %v", names)
	}
	var st topicStats
	e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
	if st.Subscriptions["early"].MsgBacklog != 2 || st.Subscriptions["late"].MsgBacklog != 0 {
		t.Fatalf("backlogs %+v", st.Subscriptions)
	}
	cs := subscribe(t, c, pulsar.ConsumerOptions{Topic: tp, SubscriptionName: "early"})
	if got := string(receive(t, cs).Payload()); got != "before-0" {
		t.Fatalf("pre-created subscription delivered %q first", got)
	}

	if code := e.admin(t, "POST", sub+"early/skip_all", "", nil); code != http.StatusNoContent {
		t.Fatalf("skip_all: %d", code)
	}
	e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
	if st.Subscriptions["early"].MsgBacklog != 0 {
		t.Fatalf("backlog after skip_all %d", st.Subscriptions["early"].MsgBacklog)
	}
	if code := e.admin(t, "POST", sub+"early/resetcursor/0", "", nil); code != http.StatusNoContent {
		t.Fatalf("resetcursor: %d", code)
	}
	e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
	if st.Subscriptions["early"].MsgBacklog != 2 {
		t.Fatalf("backlog after reset to time 0: %d, want 2", st.Subscriptions["early"].MsgBacklog)
	}
	// The reset disconnected the consumer; wait until it is back.
	waitFor(t, "the consumer to reconnect after the reset", func() bool {
		e.admin(t, "GET", adminPath(tp)+"/stats", "", &st)
		return len(st.Subscriptions["early"].Consumers) == 1
	})

	if code := e.admin(t, "DELETE", sub+"early", "", nil); code != http.StatusPreconditionFailed {
		t.Fatalf("delete with a consumer: %d, want 412", code)
	}
	if code := e.admin(t, "DELETE", sub+"late", "", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	if code := e.admin(t, "DELETE", sub+"late", "", nil); code != http.StatusNotFound {
		t.Fatalf("delete again: %d, want 404", code)
	}
}
