package migrations

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"text/template"
	"time"

	"github.com/alpes/alpes/outbox/schema"
)

// The parts of the schema that every service of a kind has are defined once,
// as goose SQL templates: the service's login role (and the relay's, for a
// producer) in shared/roles.sql, and the tables of the outbox mechanism (the
// outbox and its publication, the inbox with apply_progress, the parked
// messages) in package outbox/schema, beside the names and statements the
// code uses them by. Each service's migrations are its own files plus these
// parts, rendered for it under the versions it has them at, so that
// `alpes migrate status` names them like any other file.

//go:embed shared/*.sql
var sharedFiles embed.FS

var sharedTemplates = template.Must(template.Must(
	template.ParseFS(sharedFiles, "shared/*.sql")).
	ParseFS(schema.Files, "*.sql"))

// sharedPart is a shared template and the version it has in a service.
type sharedPart struct {
	version int
	name    string // <name>.sql, in shared/ or outbox/schema
}

// sharedParts lists, per service, the shared parts of its schema.
var sharedParts = map[string][]sharedPart{
	"bff":       {{1, "roles"}, {2, "outbox"}, {3, "inbox"}, {6, "parked"}},
	"orders":    {{1, "roles"}, {2, "outbox"}, {3, "inbox"}, {6, "parked"}},
	"payments":  {{1, "roles"}, {2, "outbox"}, {3, "inbox"}, {5, "parked"}},
	"reporting": {{1, "roles"}, {2, "inbox"}, {4, "parked"}},
}

// sharedVars are what a shared template is rendered with.
type sharedVars struct {
	Service, Role, RelayRole, Publication string
	Producer                              bool // the service has an outbox the relay streams
}

// serviceFS returns service's migrations: its own files and its shared
// parts, rendered.
func serviceFS(service string) (fs.FS, error) {
	own, err := fs.Sub(files, service)
	if err != nil {
		return nil, err
	}
	m := memFS{}
	err = fs.WalkDir(own, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		m[name], err = fs.ReadFile(own, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	vars := sharedVars{Service: service, Role: ServiceRole(service), RelayRole: RelayRole,
		Publication: schema.Publication, Producer: slices.Contains(Producers, service)}
	for _, p := range sharedParts[service] {
		var b bytes.Buffer
		if err := sharedTemplates.ExecuteTemplate(&b, p.name+".sql", vars); err != nil {
			return nil, fmt.Errorf("rendering %s.sql for %s: %w", p.name, service, err)
		}
		name := fmt.Sprintf("%05d_%s.sql", p.version, p.name)
		if _, clash := m[name]; clash {
			return nil, fmt.Errorf("%s has its own %s and the shared one", service, name)
		}
		m[name] = b.Bytes()
	}
	return m, nil
}

// memFS is a flat read-only file system in memory: what goose needs (Glob
// and Open) of a directory of migrations.
type memFS map[string][]byte

var _ fs.GlobFS = memFS(nil)

func (m memFS) Open(name string) (fs.File, error) {
	data, ok := m[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{name: name, Reader: bytes.NewReader(data), size: int64(len(data))}, nil
}

func (m memFS) Glob(pattern string) ([]string, error) {
	var out []string
	for name := range m {
		ok, err := path.Match(pattern, name)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f.name, f.size}, nil }
func (f *memFile) Close() error               { return nil }

var _ io.Reader = (*memFile)(nil)

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
