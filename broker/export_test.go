package broker

// Crash stops the broker as a killed process would: connections drop,
// nothing more is synced and cursors are not saved. What was written to
// files stays, as it would in the operating system's page cache.
func (b *Broker) Crash() {
	b.crashed.Store(true)
	b.Close()
}
