package bench

// The targets the report judges each figure against: the table "Targets" of
// docs/performance.md, which says what each figure measures and why the
// target is where it is. Change both together.
const (
	// A: the CPU of every process per order in the pipeline ÷ the same of
	// the Postgres floor (floor.go), measured in the same run.
	targetCPUOverFloor = 2.0

	// A′: the highest offered rate a 30 s step holds, with the HTTP accept
	// p99 and the outcome p99 at most these.
	targetHoldRate     = 600 // orders/s, 2 cores, every process on the box
	targetAcceptP99Ms  = 50
	targetOutcomeP99Ms = 250

	// B: the relay's drain of a backlog ÷ pg_recvlogical's, against the
	// faster of its text and binary modes. B″: the relay ÷ a polling outbox
	// on the same backlog.
	targetDrainRatio = 0.9
	targetOverPoll   = 2.0

	// B‴: the relay ÷ Debezium Server (Postgres connector, outbox event
	// router, Pulsar sink) on the same backlog and broker, its own slot.
	targetOverDebezium = 3.0

	// C: commit → applied, the worst consumer, at half of A′.
	targetApplyP50Ms = 5
	targetApplyP99Ms = 25

	// D: ten minutes at half of A′, per-window throughput and accept p99
	// within these of their medians; outbox and slot lag bounded.
	targetThroughputDevPct = 5
	targetAcceptP99DevPct  = 50

	// E: peak RSS of each alpes process during B and D.
	targetPeakRSSMiB = 64
)
