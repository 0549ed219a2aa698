// Package pulsarwire encodes and decodes the frames of the Apache Pulsar
// binary protocol (version 20) for alpes's embedded broker.
//
// A frame is either a simple command,
//
//	[u32 totalSize][u32 commandSize][BaseCommand]
//
// or a command with a payload,
//
//	[u32 totalSize][u32 commandSize][BaseCommand]
//	[u16 0x0e02][u32 size][BrokerEntryMetadata]   (optional, broker to client only)
//	[u16 0x0e01][u32 crc32c][u32 metadataSize][MessageMetadata][payload]
//
// where the CRC32C (Castagnoli) covers everything after the checksum field.
// The protocol messages themselves live in the generated package
// proto/pulsar/wire/v1. Decoding never panics: every malformed input is
// reported as an error wrapping ErrMalformedFrame, and an oversized frame as
// ErrFrameTooLarge, so the broker can close the connection and carry on.
//
// Nothing in this package keeps state; all functions are safe for
// concurrent use, and a Reader or Writer belongs to one goroutine at a time.
package pulsarwire
