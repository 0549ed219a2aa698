package reporting_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/alpes/alpes/services/reporting"
)

// namedFormat is a minimal format for registry tests: one order id per line.
type namedFormat struct{ name string }

func (f namedFormat) Name() string                            { return f.name }
func (namedFormat) ContentType() string                       { return "text/plain; charset=utf-8" }
func (namedFormat) NewWriter(w io.Writer) reporting.RowWriter { return idWriter{w} }

type idWriter struct{ w io.Writer }

func (i idWriter) WriteRow(r reporting.Row) error { _, err := fmt.Fprintln(i.w, r.OrderID); return err }
func (idWriter) Finish() error                    { return nil }

func TestRegistryRefusesBadNames(t *testing.T) {
	for _, names := range [][]string{{""}, {"CSV"}, {"two words"}, {"csv", "csv"}} {
		var fs []reporting.Format
		for _, n := range names {
			fs = append(fs, namedFormat{n})
		}
		if _, err := reporting.NewRegistry(fs...); !errors.Is(err, reporting.ErrFormat) {
			t.Errorf("%q: err = %v, want ErrFormat", names, err)
		}
	}
}

func TestBuiltinsAreRegistered(t *testing.T) {
	reg, err := reporting.DefaultRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(reg.Names(), ","); got != "csv,html,json,ndjson" {
		t.Errorf("builtin formats %s", got)
	}
}

// TestEveryFormatRendersAnEmptyReport holds every registered format to the
// RowWriter contract when there are no rows: Finish alone makes a valid,
// empty document.
func TestEveryFormatRendersAnEmptyReport(t *testing.T) {
	reg, err := reporting.DefaultRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range reg.Formats() {
		var buf bytes.Buffer
		if err := f.NewWriter(&buf).Finish(); err != nil {
			t.Errorf("%s: Finish: %v", f.Name(), err)
			continue
		}
		if rows, parsed := parseReport(t, f.Name(), buf.Bytes()); parsed && len(rows) != 0 {
			t.Errorf("%s: empty report reads back as %d rows", f.Name(), len(rows))
		}
	}
}

// TestAFormatPluggedInThroughConfig serves a format the package does not
// ship, given in Config.Formats: nothing else changes.
func TestAFormatPluggedInThroughConfig(t *testing.T) {
	reg, err := reporting.DefaultRegistry()
	if err != nil {
		t.Fatal(err)
	}
	withIDs, err := reporting.NewRegistry(append(reg.Formats(), namedFormat{"ids"})...)
	if err != nil {
		t.Fatal(err)
	}
	e := newDBEnv(t, reporting.Config{Formats: withIDs})
	rows := e.seedRows(sampleRows())
	body, err := io.ReadAll(e.get("/v1/reports/orders?format=ids").Body)
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, r := range rows {
		want.WriteString(r.OrderID + "\n")
	}
	if string(body) != want.String() {
		t.Errorf("ids report:\n%s\nwant\n%s", body, want.String())
	}
}
