package reporting

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// Format is one way to render the orders report. It is the one interface a
// new format implements; see the package documentation for how to add one.
// Implementations must be safe for concurrent use: one Format serves every
// request, and each request gets its own RowWriter from NewWriter.
type Format interface {
	// Name is the value of the report's format query parameter, e.g. "csv":
	// lower case, unique in a Registry.
	Name() string
	// ContentType is the media type of the rendered report, with its charset
	// where one applies, e.g. "text/csv; charset=utf-8".
	ContentType() string
	// NewWriter returns a writer that renders one report to w.
	NewWriter(w io.Writer) RowWriter
}

// RowWriter renders one report. WriteRow is called once per row, in report
// order, and Finish once after the last row (also when there were none); no
// call follows Finish. A RowWriter is used by one goroutine. It should write
// each row through to w rather than gather them: reports are streamed, and
// only what a format must summarise (a chart's counts) may be kept, in
// memory that does not grow with the number of rows.
type RowWriter interface {
	// WriteRow renders one row.
	WriteRow(r Row) error
	// Finish renders what follows the rows and flushes everything buffered.
	Finish() error
}

// Builtins is the catalogue of the formats this package ships. Every exported
// method of Builtins that takes no argument and returns a Format adds one
// format to DefaultRegistry, so a format's file declares its type and its
// Builtins method together and nothing else needs editing. Builtins has no
// state.
type Builtins struct{}

// ErrFormat is wrapped by Registry errors: a format without a name, or two
// formats with one name.
var ErrFormat = errors.New("invalid report format")

// Registry holds the report formats by name. It is filled before use and only
// read afterwards; reads are safe for concurrent use.
type Registry struct {
	byName map[string]Format
	names  []string
}

// NewRegistry returns a registry of formats, or an error wrapping ErrFormat
// if a name is empty, not lower case, or taken twice.
func NewRegistry(formats ...Format) (*Registry, error) {
	r := &Registry{byName: map[string]Format{}}
	for _, f := range formats {
		name := f.Name()
		if name == "" || name != strings.ToLower(name) || strings.ContainsAny(name, " ,;/") {
			return nil, fmt.Errorf("%w: name %q: want a lower-case word", ErrFormat, name)
		}
		if _, dup := r.byName[name]; dup {
			return nil, fmt.Errorf("%w: %q registered twice", ErrFormat, name)
		}
		r.byName[name] = f
		r.names = append(r.names, name)
	}
	slices.Sort(r.names)
	return r, nil
}

// DefaultRegistry returns a registry of every format of Builtins.
func DefaultRegistry() (*Registry, error) {
	return NewRegistry(builtinFormats()...)
}

// builtinFormats calls every Format-returning method of Builtins, in the
// order of their names.
func builtinFormats() []Format {
	want := reflect.TypeFor[Format]()
	v := reflect.ValueOf(Builtins{})
	var formats []Format
	for i := range v.NumMethod() {
		m := v.Method(i)
		if t := m.Type(); t.NumIn() != 0 || t.NumOut() != 1 || t.Out(0) != want {
			continue
		}
		formats = append(formats, m.Call(nil)[0].Interface().(Format))
	}
	return formats
}

// Lookup returns the format called name.
func (r *Registry) Lookup(name string) (Format, bool) {
	f, ok := r.byName[name]
	return f, ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Formats returns the registered formats, sorted by name.
func (r *Registry) Formats() []Format {
	out := make([]Format, len(r.names))
	for i, n := range r.names {
		out[i] = r.byName[n]
	}
	return out
}
