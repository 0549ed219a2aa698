package check

import (
	"context"
	"encoding/json"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/alpes/alpes/deploy/pulsarconf"
	"github.com/alpes/alpes/internal/pulsarstandalone"
	"github.com/alpes/alpes/lab/stack"
)

// alpesImage is the image docker-compose.yml builds and runs alpes from.
const alpesImage = "alpes:dev"

// The restart policies of docker-compose.yml: the long-running components
// come back after a crash or a reboot; the one-shot jobs (the image build,
// the migrations, the client) run once, so that others can wait for them
// to complete.
const (
	restartLongRunning = "unless-stopped"
	restartOneShot     = "no"
)

// composeSite is where docker-compose.yml places the stack: each component
// a service named after it, listening on every interface on its default
// port; Postgres and the real Pulsar the services postgres and pulsar.
var composeSite = stack.Site{
	PulsarURL: "pulsar://pulsar:" + port(stack.Broker.Addr),
	DSN: func(role, database string) string {
		return "postgres://" + role + "@postgres:5432/" + database + "?sslmode=disable"
	},
	URL: func(name string) string {
		c, _ := stack.Lookup(name)
		return "http://" + name + ":" + port(c.Addr)
	},
}

// migrateDSN is how the migrations connect to database: as the superuser
// of the postgres service, which owns the schemas.
func migrateDSN(database string) string {
	return "postgres://postgres:alpes-dev-only@postgres:5432/" + database + "?sslmode=disable"
}

// migrateService is the service that migrates database.
func migrateService(database string) string { return "migrate-" + database }

// port is the port of a host:port address.
func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

// loadCompose loads docker-compose.yml as `docker compose` does, through
// the Compose specification's loader: interpolation, anchors and merges,
// the short syntaxes normalised, paths resolved, every profile on (the
// client is behind one), and the consistency checks (a dependency on no
// service, an unknown key and a duplicate key are errors). The environment
// is empty, so that the shell's COMPOSE_PROJECT_NAME and the like cannot
// change what is checked.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(abs, "docker-compose.yml")},
		cli.WithWorkingDirectory(abs),
		cli.WithEnv(nil),
		cli.WithProfiles([]string{"*"}),
		cli.WithResolvedPaths(true),
		cli.WithConsistency(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return project
}

// TestComposeFileRunsTheStack checks docker-compose.yml statically, since no
// Docker engine runs here: it loads (checkCompose lists what is checked) and
// it runs what lab/stack describes; the alpes command lines it starts are
// written to testdata/compose-commandlines.json for cmd/alpes to parse.
func TestComposeFileRunsTheStack(t *testing.T) {
	project := loadCompose(t)
	if project.Name != "alpes" {
		t.Errorf("the project is called %q, want alpes (name: in the file)", project.Name)
	}
	bin := imageBinary(t)
	checkCompose(t, project, bin)
	checkCommandLines(t, "compose", composeCommandLines(project))
}

// checkCompose: every service has an image, publishes only on loopback,
// and has a restart policy if it runs alpes; every dependency's condition
// can be met (healthy: the dependency has a health check; completed: it
// runs once); Postgres runs with logical replication and the real Pulsar
// with alpes's settings; the image is built from ./cmd/alpes; every
// component of lab/stack but the broker runs with its command line at
// composeSite, publishes its own port only, is health-checked by `alpes
// probe` on its readiness path, and waits for what it needs; every database
// is migrated by the image's `alpes migrate`.
func checkCompose(t *testing.T, project *types.Project, bin string) {
	t.Helper()
	for _, want := range []string{"postgres", "pulsar", "pulsar-init", "alpes-image", "client"} {
		if _, ok := project.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}
	for name, svc := range project.Services {
		if svc.Image == "" {
			t.Errorf("%s: no image", name)
		}
		for _, p := range svc.Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes port %d on %q, beyond loopback", name, p.Target, p.HostIP)
			}
		}
		for dep, d := range svc.DependsOn {
			target := project.Services[dep]
			switch d.Condition {
			case types.ServiceConditionHealthy:
				if target.HealthCheck == nil || target.HealthCheck.Disable {
					t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
				}
			case types.ServiceConditionCompletedSuccessfully:
				if target.Restart != "" && target.Restart != restartOneShot {
					t.Errorf("%s waits for %s to complete, which restarts (%s)", name, dep, target.Restart)
				}
			}
		}
		if svc.Image != alpesImage {
			continue
		}
		if len(svc.Entrypoint) > 0 {
			t.Errorf("%s replaces the image's entrypoint with %v", name, svc.Entrypoint)
		}
		if svc.Restart != restartLongRunning && svc.Restart != restartOneShot {
			t.Errorf("%s: restart %q, want %q (a component) or %q (a job)", name, svc.Restart, restartLongRunning, restartOneShot)
		}
		if hc := svc.HealthCheck; hc != nil && (len(hc.Test) < 3 || hc.Test[0] != "CMD" || hc.Test[1] != bin || hc.Test[2] != "probe") {
			t.Errorf("%s's health check %v is not [CMD %s probe URL]: the image has no shell, no curl", name, hc.Test, bin)
		}
	}
	if b := project.Services["alpes-image"].Build; b == nil || b.Dockerfile != "deploy/Dockerfile" || project.Services["alpes-image"].Image != alpesImage {
		t.Errorf("alpes-image does not build %s with deploy/Dockerfile (%+v)", alpesImage, b)
	}
	checkPulsarRunsAlpesSettings(t, project)
	if !slices.Contains(project.Services["postgres"].Command, "wal_level=logical") {
		t.Error("postgres runs without wal_level=logical")
	}
	checkComposeComponents(t, project, bin)
	checkComposeMigrations(t, project)
	client := project.Services["client"]
	if want := "--bff-url=" + composeSite.URL(stack.BFF.Name); client.Image != alpesImage || !slices.Contains(client.Command, want) {
		t.Errorf("the client runs %s %v, want %s", client.Image, client.Command, want)
	}
	if got := dependsOn(client); !maps.Equal(got, map[string]string{stack.BFF.Name: types.ServiceConditionHealthy}) {
		t.Errorf("the client waits for %v, want the bff healthy", got)
	}
}

// checkComposeComponents compares the components' services with lab/stack.
func checkComposeComponents(t *testing.T, project *types.Project, bin string) {
	t.Helper()
	for _, c := range stack.Components() {
		if c.Name == stack.Broker.Name {
			continue
		}
		svc, ok := project.Services[c.Name]
		if !ok {
			t.Errorf("no %s service", c.Name)
			continue
		}
		if svc.Image != alpesImage {
			t.Errorf("%s runs %q, want %s", c.Name, svc.Image, alpesImage)
		}
		want := []string{c.Name}
		for _, flag := range c.At("0.0.0.0:"+port(c.Addr), "").Flags(composeSite) {
			want = append(want, "--"+flag.Name+"="+flag.Value)
		}
		if got := []string(svc.Command); !slices.Equal(got, want) {
			t.Errorf("%s runs\n  %s\nwant, as lab/stack describes it,\n  %s", c.Name, strings.Join(got, " "), strings.Join(want, " "))
		}
		for _, p := range svc.Ports {
			if got, own := p.HostIP+":"+p.Published+":"+itoa(p.Target), published(c.Addr); got != own {
				t.Errorf("%s publishes %s, want only its own port, %s", c.Name, got, own)
			}
		}
		probe := []string{"CMD", bin, "probe", "http://127.0.0.1:" + port(c.Addr) + c.Ready}
		if svc.HealthCheck == nil || !slices.Equal(svc.HealthCheck.Test, probe) {
			t.Errorf("%s's health check is %v, want its readiness, %v", c.Name, healthTest(svc), probe)
		}
		if svc.Restart != restartLongRunning {
			t.Errorf("%s: restart %q, want %q", c.Name, svc.Restart, restartLongRunning)
		}
		if got, want := dependsOn(svc), composeDeps(c); !maps.Equal(got, want) {
			t.Errorf("%s waits for\n  %v\nwant\n  %v", c.Name, got, want)
		}
	}
	wantPulsar := []string{published(stack.Broker.Addr), published(stack.Broker.AdminAddr)}
	var got []string
	for _, p := range project.Services["pulsar"].Ports {
		got = append(got, p.HostIP+":"+p.Published+":"+itoa(p.Target))
	}
	if !slices.Equal(got, wantPulsar) {
		t.Errorf("pulsar publishes %v, want the broker's ports %v", got, wantPulsar)
	}
}

// composeDeps is what component c waits for: the relay for the broker's
// namespaces and its sources' migrations; every other component for its
// own database's migration, the relay streaming (a relay refuses to create
// its slot over an outbox that already holds rows), and the peers its
// links name.
func composeDeps(c stack.Component) map[string]string {
	deps := map[string]string{}
	if c.Name == stack.Relay.Name {
		deps["pulsar-init"] = types.ServiceConditionCompletedSuccessfully
		for _, s := range c.Sources {
			deps[migrateService(s)] = types.ServiceConditionCompletedSuccessfully
		}
		return deps
	}
	deps[migrateService(c.Database)] = types.ServiceConditionCompletedSuccessfully
	deps[stack.Relay.Name] = types.ServiceConditionHealthy
	for _, l := range c.Links {
		deps[l.Peer] = types.ServiceConditionHealthy
	}
	return deps
}

// checkComposeMigrations: a service per database of lab/stack, and no
// other, each running the image's `alpes migrate` once, after Postgres is
// healthy and the image built.
func checkComposeMigrations(t *testing.T, project *types.Project) {
	t.Helper()
	for name := range project.Services {
		if db, ok := strings.CutPrefix(name, "migrate-"); ok && !slices.Contains(stack.Databases(), db) {
			t.Errorf("%s migrates no database of lab/stack", name)
		}
	}
	for _, db := range stack.Databases() {
		svc, ok := project.Services[migrateService(db)]
		if !ok {
			t.Errorf("no %s service: database %s is not migrated", migrateService(db), db)
			continue
		}
		want := []string{"migrate", db, "--dsn=" + migrateDSN(db)}
		if svc.Image != alpesImage || !slices.Equal(svc.Command, want) {
			t.Errorf("%s runs %s %v, want %s %v", migrateService(db), svc.Image, svc.Command, alpesImage, want)
		}
		if svc.Restart != restartOneShot {
			t.Errorf("%s: restart %q, want %q: others wait for it to complete", migrateService(db), svc.Restart, restartOneShot)
		}
		wantDeps := map[string]string{"postgres": types.ServiceConditionHealthy, "alpes-image": types.ServiceConditionCompletedSuccessfully}
		if got := dependsOn(svc); !maps.Equal(got, wantDeps) {
			t.Errorf("%s waits for %v, want %v", migrateService(db), got, wantDeps)
		}
	}
}

// checkPulsarRunsAlpesSettings: the containers run the Pulsar version the
// launcher runs, with deploy/pulsarconf/standalone.conf (the one source of
// alpes's broker settings, deduplication among them) appended to the
// configuration that standalone really reads. PULSAR_PREFIX_* variables
// would do nothing there: standalone applies them only through
// bin/apply-config-from-env.py. pulsar-init creates the tenant and each
// namespace with deduplication on.
func checkPulsarRunsAlpesSettings(t *testing.T, project *types.Project) {
	t.Helper()
	want := "apachepulsar/pulsar:" + pulsarstandalone.DefaultVersion
	for _, name := range []string{"pulsar", "pulsar-init"} {
		if img := project.Services[name].Image; img != want {
			t.Errorf("%s runs %q, want %q (the version `alpes pulsar up` runs)", name, img, want)
		}
	}
	pulsar := project.Services["pulsar"]
	for k := range pulsar.Environment {
		if strings.HasPrefix(k, "PULSAR_PREFIX_") {
			t.Errorf("pulsar sets %s, which standalone ignores", k)
		}
	}
	conf, err := filepath.Abs(filepath.Join(root, "deploy/pulsarconf/standalone.conf"))
	if err != nil {
		t.Fatal(err)
	}
	mounted := ""
	for _, v := range pulsar.Volumes {
		if v.Type == types.VolumeTypeBind && v.Source == conf {
			mounted = v.Target
		}
	}
	if mounted == "" {
		t.Fatal("pulsar does not mount deploy/pulsarconf/standalone.conf")
	}
	script := strings.Join(pulsar.Command, " ")
	for _, step := range []string{"cat conf/standalone.conf " + mounted + " > /tmp/standalone.conf",
		"PULSAR_STANDALONE_CONF=/tmp/standalone.conf exec bin/pulsar standalone"} {
		if !strings.Contains(script, step) {
			t.Errorf("pulsar's command lacks %q: %s", step, script)
		}
	}
	if !strings.Contains(pulsarconf.StandaloneOverrides, "\nbrokerDeduplicationEnabled=true\n") {
		t.Error("deploy/pulsarconf/standalone.conf does not turn deduplication on")
	}
	// $$ in the file is a literal $ once interpolated: the script's own variable.
	initScript := strings.Join(project.Services["pulsar-init"].Command, " ")
	for _, step := range []string{`admin="bin/pulsar-admin --admin-url http://pulsar:` + port(stack.Broker.AdminAddr) + `"`,
		`$admin namespaces set-deduplication "alpes/$ns" --enable`} {
		if !strings.Contains(initScript, step) {
			t.Errorf("pulsar-init's command lacks %q: %s", step, initScript)
		}
	}
}

// imageBinary is where deploy/Dockerfile puts the alpes binary, built from
// ./cmd/alpes: its ENTRYPOINT, which health checks name.
func imageBinary(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "deploy/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(raw)
	if !regexp.MustCompile(`(?m)^RUN .*go build .*\./cmd/alpes$`).MatchString(dockerfile) {
		t.Error("deploy/Dockerfile does not build ./cmd/alpes")
	}
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindStringSubmatch(dockerfile)
	var entrypoint []string
	if m == nil || json.Unmarshal([]byte(m[1]), &entrypoint) != nil || len(entrypoint) != 1 {
		t.Fatalf("deploy/Dockerfile has no ENTRYPOINT [\"/path/to/alpes\"]")
	}
	return entrypoint[0]
}

// composeCommandLines are the alpes command lines docker-compose.yml starts:
// every alpes container's command and health check, in service order.
func composeCommandLines(project *types.Project) []commandLine {
	var lines []commandLine
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		svc := project.Services[name]
		if svc.Image != alpesImage {
			continue
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		lines = append(lines, commandLine{Where: "docker-compose.yml " + name, Args: svc.Command, Env: alpesEnv(env)})
		if hc := svc.HealthCheck; hc != nil && len(hc.Test) > 2 {
			lines = append(lines, commandLine{Where: "docker-compose.yml " + name + " healthcheck", Args: hc.Test[2:]})
		}
	}
	return lines
}

func dependsOn(svc types.ServiceConfig) map[string]string {
	deps := map[string]string{}
	for name, d := range svc.DependsOn {
		deps[name] = d.Condition
	}
	return deps
}

func healthTest(svc types.ServiceConfig) []string {
	if svc.HealthCheck == nil {
		return nil
	}
	return svc.HealthCheck.Test
}

// published is how docker-compose.yml publishes addr's port: on loopback,
// under the same number.
func published(addr string) string {
	return "127.0.0.1:" + port(addr) + ":" + port(addr)
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
