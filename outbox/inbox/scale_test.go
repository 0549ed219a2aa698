package inbox_test

import "testing"

// TestTwoInstancesShareTheWorkInKeyOrder runs two instances on one
// Key_Shared subscription, the second joining mid-stream, as a scale-out
// does: every event is applied once, and each key's in order.
func TestTwoInstancesShareTheWorkInKeyOrder(t *testing.T) {
	e := newEnv(t)
	pub := e.publisher(e.ordersTopic)
	first := sequenceFrom(20, 0, 10)
	pub.publish(first...)
	a := e.start(e.config(effectRegistry()))
	e.waitFor("the first instance at work", func() bool { return a.Stats().Applied > 0 })

	b := e.start(e.config(effectRegistry()))
	e.waitFor("both instances subscribed", func() bool {
		sub, _ := e.subscriptionStats(e.ordersTopic)
		return len(sub.Consumers) == 2
	})
	second := sequenceFrom(20, 10, 10)
	pub.publish(second...)

	all := append(first, second...)
	e.waitEffects(len(all))
	e.waitDrained(e.ordersTopic)
	e.assertEffects(all)
	sa, sb := a.Stats(), b.Stats()
	if sa.Applied+sb.Applied != int64(len(all)) || sa.Duplicates+sb.Duplicates != 0 {
		t.Errorf("stats %+v and %+v: want %d applied between them, no duplicates", sa, sb, len(all))
	}
	if sb.Applied == 0 {
		t.Errorf("the second instance applied nothing: the work was not shared")
	}
}
