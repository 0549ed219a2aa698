package reporting

import (
	"encoding/json"
	"io"
)

// JSON returns the JSON format: one array holding an object per order,
// written element by element, so it streams like the other formats.
func (Builtins) JSON() Format { return jsonFormat{} }

type jsonFormat struct{}

func (jsonFormat) Name() string        { return "json" }
func (jsonFormat) ContentType() string { return "application/json" }

func (jsonFormat) NewWriter(w io.Writer) RowWriter { return &jsonWriter{w: w} }

type jsonWriter struct {
	w    io.Writer
	rows int
}

func (j *jsonWriter) WriteRow(r Row) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	sep := ",\n"
	if j.rows == 0 {
		sep = "[\n"
	}
	j.rows++
	if _, err := io.WriteString(j.w, sep); err != nil {
		return err
	}
	_, err = j.w.Write(b)
	return err
}

func (j *jsonWriter) Finish() error {
	end := "\n]\n"
	if j.rows == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(j.w, end)
	return err
}
