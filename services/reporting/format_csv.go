package reporting

import (
	"encoding/csv"
	"io"
)

// CSV returns the CSV format: RFC 4180, a header row of Columns, then one
// record per order.
func (Builtins) CSV() Format { return csvFormat{} }

type csvFormat struct{}

func (csvFormat) Name() string        { return "csv" }
func (csvFormat) ContentType() string { return "text/csv; charset=utf-8" }

func (csvFormat) NewWriter(w io.Writer) RowWriter {
	return &csvWriter{w: csv.NewWriter(w)}
}

type csvWriter struct {
	w      *csv.Writer
	header bool
}

func (c *csvWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	return c.w.Write(Columns())
}

func (c *csvWriter) WriteRow(r Row) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	return c.w.Write(r.Values())
}

func (c *csvWriter) Finish() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}
