package reporting

import (
	"encoding/json"
	"io"
)

// NDJSON returns the newline-delimited JSON format: one JSON object per
// order per line (https://github.com/ndjson/ndjson-spec), no enclosing array,
// so a reader can process a report of any size line by line.
func (Builtins) NDJSON() Format { return ndjsonFormat{} }

type ndjsonFormat struct{}

func (ndjsonFormat) Name() string        { return "ndjson" }
func (ndjsonFormat) ContentType() string { return "application/x-ndjson" }

func (ndjsonFormat) NewWriter(w io.Writer) RowWriter {
	return ndjsonWriter{enc: json.NewEncoder(w)}
}

type ndjsonWriter struct{ enc *json.Encoder }

// WriteRow writes the row's object and a newline (json.Encoder adds it).
func (n ndjsonWriter) WriteRow(r Row) error { return n.enc.Encode(r) }

func (ndjsonWriter) Finish() error { return nil }
