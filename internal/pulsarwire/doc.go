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
// What the broker does for every message it stores is done by hand with
// protowire rather than through the generated code: decoding a SEND
// (decodeSend), reading the few metadata fields the broker needs
// (Message.DecodeSummary) and encoding the SEND_RECEIPT
// (AppendSendReceipt). Each accepts, refuses and produces exactly what
// the generated code does, which a fuzz test checks against it, and each
// takes its field numbers from wire.proto, which a test checks against
// the generated descriptor.
//
// Nothing in this package keeps state; all functions are safe for
// concurrent use, and a Reader or Writer belongs to one goroutine at a time.
package pulsarwire
