package pulsarsend

// CorruptChecksums makes every later SEND of p carry a wrong checksum, which
// the broker answers with SEND_ERROR. Call it before p's next Send.
func CorruptChecksums(p *Producer) { p.corruptChecksum = true }
