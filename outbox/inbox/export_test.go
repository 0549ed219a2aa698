package inbox

// SetAfterCommit makes c call f after each commit and before acknowledging
// the committed messages; when f returns an error, Run returns it at once,
// leaving them unacknowledged, as a crash between commit and ack would.
// Call it before Run.
func SetAfterCommit(c *Consumer, f func() error) { c.afterCommit = f }

// SetBeforeCommit makes c call f just before each commit; an error rolls the
// transaction back as a database error would.
func SetBeforeCommit(c *Consumer, f func() error) { c.beforeCommit = f }

// SetAfterSweepBatch makes c call f after each sweep batch commits, with the
// number of rows the batch deleted, from the sweep's goroutine. Call it
// before Run.
func SetAfterSweepBatch(c *Consumer, f func(n int64)) { c.afterSweepBatch = f }
