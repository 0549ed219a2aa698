package alpes_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/alpes/alpes/"

// pkg is what `go list -json` says of a package that this test needs.
type pkg struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
}

// packages lists every package of the module with its imports, relative to
// the module ("relay/pgsource").
func packages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports", "./...").Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("go list: %v\n%s", err, exit.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		for _, list := range []*[]string{&p.Imports, &p.TestImports, &p.XTestImports} {
			var own []string
			for _, imp := range *list {
				if rel, ok := strings.CutPrefix(imp, module); ok {
					own = append(own, rel)
				}
			}
			*list = own
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages; is the test running in the module?", len(pkgs))
	}
	return pkgs
}

// under reports whether path is dir or inside it.
func under(path string, dirs ...string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// rule is one constraint on imports: packages under from must not import
// packages under to, except those under allowed; tests says whether the
// rule holds for test files too.
type rule struct {
	why      string
	from, to []string
	allowed  []string // imports under to that the rule permits
	exempt   []string // packages under from that the rule does not bind
	tests    bool
}

var rules = []rule{
	{why: "internal/ holds foundations: it imports nothing above it",
		from: []string{"internal"}, to: []string{"broker", "outbox", "relay", "services", "lab", "cmd"},
		allowed: []string{"outbox/schema"}}, // migrations render it; a leaf of names and SQL
	{why: "the lab is imported by nothing but the CLI",
		from: []string{"internal", "broker", "outbox", "relay", "services", "migrations", "proto", "deploy"}, to: []string{"lab"}, tests: true},
	{why: "the outbox mechanism knows no shop, relay, broker or lab",
		from: []string{"outbox"}, to: []string{"relay", "services", "broker", "lab", "cmd"}},
	{why: "the relay carries any outbox: it knows no shop",
		from: []string{"relay"}, to: []string{"services", "lab", "cmd"}},
	{why: "the services talk through the broker, not through the relay or the embedded broker",
		from: []string{"services"}, to: []string{"relay", "broker", "lab", "cmd"},
		allowed: []string{"broker/brokertest"},
		// The shop's test world runs a relay between a service's database
		// and the broker; only tests import it (see below).
		exempt: []string{"services/servicetest"}},
	{why: "the embedded broker is a broker: it knows nothing of what travels through it",
		from: []string{"broker"}, to: []string{"outbox", "relay", "services", "lab", "cmd", "migrations"}},
}

// TestImportsGoDown holds the repository to its layout (see doc.go).
func TestImportsGoDown(t *testing.T) {
	for _, p := range packages(t) {
		for _, r := range rules {
			if !under(p.ImportPath, r.from...) || under(p.ImportPath, r.exempt...) {
				continue
			}
			lists := map[string][]string{"imports": p.Imports}
			if r.tests {
				lists["test files import"] = append(append([]string{}, p.TestImports...), p.XTestImports...)
			}
			for kind, imps := range lists {
				for _, imp := range imps {
					if under(imp, r.to...) && !under(imp, r.allowed...) {
						t.Errorf("%s %s %s: %s", p.ImportPath, kind, imp, r.why)
					}
				}
			}
		}
	}
}

// TestOnlyTestsImportTheServicesTestWorld keeps the relay out of the
// services' production code by way of their test world.
func TestOnlyTestsImportTheServicesTestWorld(t *testing.T) {
	for _, p := range packages(t) {
		for _, imp := range p.Imports {
			if imp == "services/servicetest" {
				t.Errorf("%s imports services/servicetest outside its tests", p.ImportPath)
			}
		}
	}
}
