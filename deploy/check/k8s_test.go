package check

import (
	"encoding/json"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/alpes/alpes/lab/stack"
	"github.com/alpes/alpes/migrations"
)

// The names a site's overlay must give: the ConfigMap of Pulsar's URLs and
// tenant, the Secret of the Postgres DSNs, the Secret of the tokens.
const (
	pulsarConfig   = "alpes-pulsar"
	postgresSecret = "alpes-postgres"
	tokensSecret   = "alpes-tokens"
)

// exampleOverlay is the overlay the checks render.
const exampleOverlay = "overlays/example"

// relayReplicas: one instance streams, the other stands by (docs/relay.md).
const relayReplicas = 2

// k8sSite is where the manifests place the stack, with every value that
// comes from a ConfigMap or a Secret written as a reference to its key
// (refSecret, refConfig): each component behind a Service named after it
// on its default port, the broker's URL in the ConfigMap, each DSN in the
// Secret under a key of the login and the database.
var k8sSite = stack.Site{
	PulsarURL: refConfig(pulsarConfig, "url"),
	DSN: func(role, database string) string {
		if role == migrations.RelayRole {
			return refSecret(postgresSecret, "relay-"+database+"-dsn")
		}
		return refSecret(postgresSecret, database+"-dsn")
	},
	URL: func(name string) string {
		c, _ := stack.Lookup(name)
		return "http://" + name + ":" + port(c.Addr)
	},
}

// migrateKey is the key of the Secret's DSN the migrations of database use.
func migrateKey(database string) string { return "migrate-" + database + "-dsn" }

func refSecret(name, key string) string { return "$(secret " + name + "/" + key + ")" }
func refConfig(name, key string) string { return "$(configmap " + name + "/" + key + ")" }

// liveness is the path a component's liveness probe asks: /healthz, which
// answers while the process serves, but for the bff, which has none and
// whose readiness path (lab/stack) answers as long.
func liveness(c stack.Component) string {
	if c.Name == stack.BFF.Name {
		return c.Ready
	}
	return "/healthz"
}

// TestKubernetesManifests renders deploy/k8s/overlays/example with
// kustomize, decodes every object strictly, and checks it against lab/stack
// and the measured figures (checkComponent, checkMigrateJob,
// checkReferences list what); the alpes command lines the containers start
// are written to testdata/k8s-commandlines.json for cmd/alpes to parse.
func TestKubernetesManifests(t *testing.T) {
	m := render(t, exampleOverlay)
	r := resolver{m: m}
	bench := readBenchmarks(t)
	var lines []commandLine
	for _, c := range stack.Components() {
		if c.Name == stack.Broker.Name {
			continue // Pulsar is outside, named by the ConfigMap
		}
		lines = append(lines, checkComponent(t, m, r, bench, c)...)
	}
	lines = append(lines, checkMigrateJob(t, m, r)...)
	for name := range m.deployments {
		if _, ok := stack.Lookup(name); !ok {
			t.Errorf("Deployment %s runs no component of lab/stack", name)
		}
	}
	checkReferences(t, m, r)
	if len(m.namespaces) != 1 {
		t.Errorf("the overlay creates namespaces %v, want its own", slices.Collect(maps.Keys(m.namespaces)))
	}
	checkCommandLines(t, "k8s", lines)
}

// TestKubernetesBaseIsSiteFree renders the base alone: it builds, and holds
// nothing a site gives (namespace, image, ConfigMap, Secret), so that every
// overlay gives its own.
func TestKubernetesBaseIsSiteFree(t *testing.T) {
	m := render(t, "base")
	if n := len(m.configMaps) + len(m.secrets) + len(m.namespaces); n > 0 {
		t.Errorf("the base holds %d ConfigMaps, Secrets or Namespaces; they are a site's", n)
	}
	for name, d := range m.deployments {
		if d.Namespace != "" {
			t.Errorf("Deployment %s is in namespace %s", name, d.Namespace)
		}
	}
	if len(m.deployments) == 0 || len(m.jobs) == 0 {
		t.Error("the base holds no Deployment or no Job")
	}
}

// checkComponent: component c runs as a Deployment of its name (the relay
// with exactly two replicas, the services at least two), one container
// running `alpes <name>` whose flags, from its arguments and ALPES_…
// variables, are lab/stack's at k8sSite; its port is its default one,
// named http, behind a Service of its name; its readiness probe asks
// lab/stack's Ready path and its liveness probe /healthz (liveness); it
// runs as non-root on a read-only root; its requests cover the measured
// peak RSS and CPU (checkResources); a producer waits for the relay to be
// ready; a PodDisruptionBudget selects its pods and no other's, and lets
// one go.
func checkComponent(t *testing.T, m manifests, r resolver, bench benchmarks, c stack.Component) []commandLine {
	t.Helper()
	d, ok := m.deployments[c.Name]
	if !ok {
		t.Errorf("no Deployment %s", c.Name)
		return nil
	}
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	switch {
	case c.Name == stack.Relay.Name && replicas != relayReplicas:
		t.Errorf("the relay runs %d instances, want %d: one streams, one stands by", replicas, relayReplicas)
	case c.Name != stack.Relay.Name && replicas < 2:
		t.Errorf("%s runs %d instance(s), want several", c.Name, replicas)
	}
	if c.Name == stack.Relay.Name {
		ru := d.Spec.Strategy.RollingUpdate
		if ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Error("the relay's rolling update may stop an instance before its successor stands by (maxUnavailable: 0)")
		}
	}
	pod := d.Spec.Template
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
		t.Errorf("Deployment %s's selector %v does not select its pods %v (%v)", c.Name, d.Spec.Selector, pod.Labels, err)
	}
	if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s may run as root", c.Name)
	}
	if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != c.Name {
		t.Errorf("%s's pod runs %d containers, want one called %s", c.Name, len(pod.Spec.Containers), c.Name)
		return nil
	}
	ctr := pod.Spec.Containers[0]
	where := "deploy/k8s Deployment " + c.Name
	symbolic, concrete := r.env(t, where, ctr)
	cmd, flags := effectiveFlags(t, where, ctr.Args, symbolic)
	if cmd != c.Name {
		t.Errorf("%s runs alpes %s", where, cmd)
	}
	want := map[string][]string{}
	for _, f := range c.At("0.0.0.0:"+port(c.Addr), "").Flags(k8sSite) {
		want[f.Name] = append(want[f.Name], f.Value)
	}
	for name, values := range want {
		if !slices.Equal(flags[name], values) {
			t.Errorf("%s: --%s is %q, want, as lab/stack describes it, %q", where, name, flags[name], values)
		}
	}
	if got := flags["pulsar-tenant"]; !slices.Equal(got, []string{refConfig(pulsarConfig, "tenant")}) {
		t.Errorf("%s: --pulsar-tenant is %q, want the deployment's, from %s", where, got, pulsarConfig)
	}
	checkContainer(t, where, ctr)
	if len(ctr.Ports) != 1 || ctr.Ports[0].Name != "http" || strconv.Itoa(int(ctr.Ports[0].ContainerPort)) != port(c.Addr) {
		t.Errorf("%s exposes %v, want its port %s, named http", where, ctr.Ports, port(c.Addr))
	}
	checkProbe(t, where+" readiness", ctr.ReadinessProbe, c.Ready)
	checkProbe(t, where+" liveness", ctr.LivenessProbe, liveness(c))
	checkResources(t, where, ctr, bench, c.Name)
	lines := []commandLine{{Where: where, Args: ctr.Args, Env: alpesEnv(concrete)}}

	var inits []string
	for _, ic := range pod.Spec.InitContainers {
		inits = append(inits, ic.Name)
		w := where + " init container " + ic.Name
		checkContainer(t, w, ic)
		checkResources(t, w, ic, bench, "")
		_, env := r.env(t, w, ic)
		lines = append(lines, commandLine{Where: w, Args: ic.Args, Env: alpesEnv(env)})
		if ic.Name == "wait-for-relay" {
			if want := []string{"probe", k8sSite.URL(stack.Relay.Name) + stack.Relay.Ready}; !slices.Equal(ic.Args, want) {
				t.Errorf("%s runs alpes %v, want alpes %v", w, ic.Args, want)
			}
		}
	}
	if producer := slices.Contains(stack.Relay.Sources, c.Database); producer != slices.Equal(inits, []string{"wait-for-relay"}) {
		t.Errorf("%s's init containers are %v; a producer (%v) waits for the relay, and only one does", c.Name, inits, stack.Relay.Sources)
	}

	svc, ok := m.services[c.Name]
	if !ok {
		t.Errorf("no Service %s: its peers reach it at %s", c.Name, k8sSite.URL(c.Name))
	} else {
		if len(svc.Spec.Ports) != 1 || strconv.Itoa(int(svc.Spec.Ports[0].Port)) != port(c.Addr) ||
			svc.Spec.Ports[0].TargetPort != intstr.FromString("http") {
			t.Errorf("Service %s serves %v, want port %s to the pods' http", c.Name, svc.Spec.Ports, port(c.Addr))
		}
		checkSelectsOnly(t, m, "Service "+c.Name, labels.SelectorFromSet(svc.Spec.Selector), c.Name)
	}
	pdb, ok := m.pdbs[c.Name]
	if !ok {
		t.Errorf("no PodDisruptionBudget %s", c.Name)
	} else {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			t.Errorf("PodDisruptionBudget %s: %v", c.Name, err)
		} else {
			checkSelectsOnly(t, m, "PodDisruptionBudget "+c.Name, sel, c.Name)
		}
		checkDisruptionAllowed(t, pdb, replicas)
	}
	return lines
}

// checkSelectsOnly: sel selects the pods of Deployment name, and those of
// no other Deployment or Job.
func checkSelectsOnly(t *testing.T, m manifests, what string, sel labels.Selector, name string) {
	t.Helper()
	if sel.Empty() {
		t.Errorf("%s selects every pod", what)
		return
	}
	for other, d := range m.deployments {
		if got := sel.Matches(labels.Set(d.Spec.Template.Labels)); got != (other == name) {
			t.Errorf("%s selects Deployment %s's pods: %v, want %v", what, other, got, other == name)
		}
	}
	for other, j := range m.jobs {
		if sel.Matches(labels.Set(j.Spec.Template.Labels)) {
			t.Errorf("%s selects Job %s's pods", what, other)
		}
	}
}

// checkDisruptionAllowed: the budget lets at least one of replicas pods go
// (a budget that lets none blocks every node drain), and keeps one.
func checkDisruptionAllowed(t *testing.T, pdb *policyv1.PodDisruptionBudget, replicas int32) {
	t.Helper()
	s := pdb.Spec
	switch {
	case s.MaxUnavailable != nil && s.MinAvailable == nil:
		if n := s.MaxUnavailable.IntValue(); s.MaxUnavailable.Type != intstr.Int || n < 1 || int32(n) >= replicas {
			t.Errorf("PodDisruptionBudget %s: maxUnavailable %s of %d", pdb.Name, s.MaxUnavailable.String(), replicas)
		}
	case s.MinAvailable != nil && s.MaxUnavailable == nil:
		if n := s.MinAvailable.IntValue(); s.MinAvailable.Type != intstr.Int || n < 1 || int32(n) >= replicas {
			t.Errorf("PodDisruptionBudget %s: minAvailable %s of %d", pdb.Name, s.MinAvailable.String(), replicas)
		}
	default:
		t.Errorf("PodDisruptionBudget %s: want one of minAvailable and maxUnavailable", pdb.Name)
	}
}

// checkContainer: an alpes container runs the image the overlay names (a
// registry's, tagged), through the image's entrypoint, unprivileged on a
// read-only root.
func checkContainer(t *testing.T, where string, c corev1.Container) {
	t.Helper()
	if name, tag, ok := strings.Cut(c.Image, ":"); !ok || name == "alpes" || tag == "" || tag == "latest" {
		t.Errorf("%s runs image %q: the overlay names no image (images:) or no tag", where, c.Image)
	}
	if len(c.Command) > 0 {
		t.Errorf("%s replaces the image's entrypoint with %v", where, c.Command)
	}
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: want allowPrivilegeEscalation false and readOnlyRootFilesystem true", where)
	}
}

// checkProbe: the probe GETs path on the container's http port.
func checkProbe(t *testing.T, what string, p *corev1.Probe, path string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: no HTTP probe, want GET %s", what, path)
		return
	}
	if p.HTTPGet.Path != path || p.HTTPGet.Port != intstr.FromString("http") {
		t.Errorf("%s: GET %s on port %s, want GET %s on http", what, p.HTTPGet.Path, p.HTTPGet.Port.String(), path)
	}
}

// effectiveFlags are the command (the first argument) and the flags a
// container's alpes process gets, by name in order: its --name=value
// arguments, then its ALPES_… variables (env, resolved). A flag that takes
// a list splits its variable at the list's separator.
func effectiveFlags(t *testing.T, where string, args []string, env map[string]string) (string, map[string][]string) {
	t.Helper()
	flags := map[string][]string{}
	if len(args) == 0 {
		t.Errorf("%s: no arguments: the image would run alpes without a command", where)
		return "", flags
	}
	for _, a := range args[1:] {
		name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !strings.HasPrefix(a, "--") {
			t.Errorf("%s: argument %q is not --flag=value", where, a)
			continue
		}
		flags[name] = append(flags[name], value)
	}
	for _, k := range slices.Sorted(maps.Keys(alpesEnv(env))) {
		name := envFlag(k)
		if _, dup := flags[name]; dup {
			t.Errorf("%s gives --%s twice, as an argument and as %s", where, name, k)
		}
		values := []string{env[k]}
		if sep, ok := listSeparators[name]; ok {
			values = strings.Split(env[k], sep)
		}
		flags[name] = append(flags[name], values...)
	}
	return args[0], flags
}

// listSeparators are the separators of the list flags the manifests set
// through variables: the relay's --source (sep:";" in cmd/alpes/relay.go,
// since a DSN may hold commas).
var listSeparators = map[string]string{"source": ";"}

// checkMigrateJob: a Job migrates every database of lab/stack, a container
// each running `alpes migrate <database>` with its DSN from the Secret,
// and retries on failure.
func checkMigrateJob(t *testing.T, m manifests, r resolver) []commandLine {
	t.Helper()
	job, ok := m.jobs["migrate"]
	if !ok || len(m.jobs) != 1 {
		t.Errorf("the Jobs are %v, want one, migrate", slices.Collect(maps.Keys(m.jobs)))
		return nil
	}
	pod := job.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyOnFailure && pod.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("the migrate Job's pods restart %q", pod.RestartPolicy)
	}
	if job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit < 1 {
		t.Error("the migrate Job never retries (backoffLimit)")
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Error("the migrate Job may run as root")
	}
	var lines []commandLine
	var names []string
	for _, c := range pod.Containers {
		names = append(names, c.Name)
		where := "deploy/k8s Job migrate container " + c.Name
		checkContainer(t, where, c)
		checkResources(t, where, c, benchmarks{}, "")
		symbolic, concrete := r.env(t, where, c)
		if want := []string{"migrate", c.Name}; !slices.Equal(c.Args, want) {
			t.Errorf("%s runs alpes %v, want alpes %v", where, c.Args, want)
		}
		if got, want := symbolic["ALPES_DSN"], refSecret(postgresSecret, migrateKey(c.Name)); got != want {
			t.Errorf("%s: --dsn is %q, want %q", where, got, want)
		}
		lines = append(lines, commandLine{Where: where, Args: c.Args, Env: alpesEnv(concrete)})
	}
	if !slices.Equal(names, stack.Databases()) {
		t.Errorf("the migrate Job migrates %v, want every database, %v", names, stack.Databases())
	}
	return lines
}

// checkReferences: the overlay's example Secrets hold DSNs of the right
// login and database with no real password; nothing in deploy/k8s is a
// Secret, nor a DSN or a token written out in a variable; every FILE.env
// the overlays read is ignored by git.
func checkReferences(t *testing.T, m manifests, r resolver) {
	t.Helper()
	pg := m.secrets[postgresSecret]
	if pg == nil {
		t.Fatalf("the overlay generates no Secret %s", postgresSecret)
	}
	for key, value := range pg.Data {
		u, err := url.Parse(string(value))
		if err != nil || u.Scheme != "postgres" || u.User == nil {
			t.Errorf("%s/%s is no postgres:// DSN with a login", postgresSecret, key)
			continue
		}
		db := strings.TrimPrefix(u.Path, "/")
		wantRole := ""
		switch {
		case key == db+"-dsn":
			wantRole = migrations.ServiceRole(db)
		case key == "relay-"+db+"-dsn":
			wantRole = migrations.RelayRole
		case key == migrateKey(db):
		default:
			t.Errorf("%s/%s names database %q", postgresSecret, key, db)
		}
		if wantRole != "" && u.User.Username() != wantRole {
			t.Errorf("%s/%s logs in as %s, want %s", postgresSecret, key, u.User.Username(), wantRole)
		}
		if pw, _ := u.User.Password(); pw != "REPLACE_ME" {
			t.Errorf("%s/%s: the example holds a password", postgresSecret, key)
		}
	}
	for name, s := range m.secrets {
		for key, v := range s.Data {
			if name != postgresSecret && string(v) != "REPLACE_ME" {
				t.Errorf("%s/%s: the example holds a value", name, key)
			}
		}
	}
	err := filepath.WalkDir(filepath.Join(root, k8sDir), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(path, ".env.example") {
			ignore, _ := os.ReadFile(filepath.Join(filepath.Dir(path), ".gitignore"))
			if !slices.Contains(strings.Split(string(ignore), "\n"), "*.env") {
				t.Errorf("%s: git does not ignore the .env beside it", path)
			}
		}
		if !strings.HasSuffix(path, ".yaml") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if regexp.MustCompile(`(?m)^kind:\s*Secret\s*$`).Match(raw) {
			t.Errorf("%s holds a Secret: secrets are a site's, generated from its .env files", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for where, literals := range r.literals {
		for name, v := range literals {
			if strings.Contains(v, "://") && strings.Contains(v, "@") || strings.Contains(name, "TOKEN") || strings.Contains(name, "DSN") {
				t.Errorf("%s sets %s in the manifest (%q), not from a Secret", where, name, v)
			}
		}
	}
}

// resolver resolves a container's variables as the kubelet does, from the
// rendered ConfigMaps and Secrets, and checks every reference.
type resolver struct {
	m        manifests
	literals map[string]map[string]string // where → variables given as values
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// env are c's variables twice: symbolic, each value from a ConfigMap or a
// Secret written as a reference to its key (refConfig, refSecret), and
// concrete, with the rendered values. $(VAR) in a value is replaced by an
// earlier variable, as the kubelet does; a reference to no earlier
// variable, to a ConfigMap or Secret the overlay does not generate, or to a
// key it lacks (unless optional) is an error.
func (r *resolver) env(t *testing.T, where string, c corev1.Container) (symbolic, concrete map[string]string) {
	t.Helper()
	if len(c.EnvFrom) > 0 {
		t.Errorf("%s takes variables from whole objects (envFrom); name each", where)
	}
	if r.literals == nil {
		r.literals = map[string]map[string]string{}
	}
	symbolic, concrete = map[string]string{}, map[string]string{}
	expand := func(s string, vars map[string]string) string {
		return varRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := varRef.FindStringSubmatch(ref)[1]
			v, ok := vars[name]
			if !ok {
				t.Errorf("%s: %s refers to no variable defined before it", where, ref)
			}
			return v
		})
	}
	for _, e := range c.Env {
		if _, dup := symbolic[e.Name]; dup {
			t.Errorf("%s sets %s twice", where, e.Name)
		}
		switch {
		case e.ValueFrom == nil:
			symbolic[e.Name], concrete[e.Name] = expand(e.Value, symbolic), expand(e.Value, concrete)
			if !varRef.MatchString(e.Value) {
				if r.literals[where] == nil {
					r.literals[where] = map[string]string{}
				}
				r.literals[where][e.Name] = e.Value
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			name := r.name(ref.Name)
			s, ok := r.m.secrets[name]
			if !ok {
				t.Errorf("%s: %s refers to Secret %s, which the overlay does not generate", where, e.Name, ref.Name)
				continue
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if ref.Optional == nil || !*ref.Optional {
					t.Errorf("%s: %s refers to key %s, which Secret %s lacks", where, e.Name, ref.Key, name)
				}
				continue
			}
			symbolic[e.Name], concrete[e.Name] = refSecret(name, ref.Key), string(v)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			name := r.name(ref.Name)
			cm, ok := r.m.configMaps[name]
			if !ok {
				t.Errorf("%s: %s refers to ConfigMap %s, which the overlay does not generate", where, e.Name, ref.Name)
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				t.Errorf("%s: %s refers to key %s, which ConfigMap %s lacks", where, e.Name, ref.Key, name)
				continue
			}
			symbolic[e.Name], concrete[e.Name] = refConfig(name, ref.Key), v
		default:
			t.Errorf("%s: %s comes from neither a ConfigMap nor a Secret", where, e.Name)
		}
	}
	return symbolic, concrete
}

// name is the name in the manifests of a rendered ConfigMap or Secret.
func (r *resolver) name(rendered string) string {
	if n, ok := r.m.generatedName[rendered]; ok {
		return n
	}
	return rendered
}

// benchmarks are the figures of docs/benchmarks.json the resources come
// from: each process's peak RSS during B and D, its CPU per order during D,
// and D's rate.
type benchmarks struct {
	B struct {
		PeakRSS map[string]float64 `json:"peak_rss_mib"`
	} `json:"b_drain"`
	D struct {
		Rate    float64            `json:"rate_per_s"`
		PeakRSS map[string]float64 `json:"peak_rss_mib"`
		Cost    struct {
			CPU map[string]float64 `json:"cpu_us"`
		} `json:"cost_per_order"`
	} `json:"d_constancy"`
}

func readBenchmarks(t *testing.T) benchmarks {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "docs/benchmarks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var b benchmarks
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatalf("docs/benchmarks.json: %v", err)
	}
	return b
}

// checkResources: every container requests and limits CPU and memory,
// requests at most its limits. For a measured process (process non-empty),
// the memory request covers its peak RSS in docs/benchmarks.json (the
// larger of B's and D's) and the limit half as much again, the CPU request
// its CPU per order during D at D's rate, and GOMEMLIMIT lies between the
// peak and the limit.
func checkResources(t *testing.T, where string, c corev1.Container, b benchmarks, process string) {
	t.Helper()
	req, lim := c.Resources.Requests, c.Resources.Limits
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		rq, okr := req[res]
		l, okl := lim[res]
		if !okr || !okl {
			t.Errorf("%s: no %s request or limit", where, res)
			continue
		}
		if rq.Cmp(l) > 0 {
			t.Errorf("%s requests more %s (%s) than its limit (%s)", where, res, rq.String(), l.String())
		}
	}
	if process == "" {
		return
	}
	const mib = 1 << 20
	peak := max(b.B.PeakRSS[process], b.D.PeakRSS[process])
	cores := b.D.Cost.CPU[process] * b.D.Rate / 1e6
	if peak <= 0 || cores <= 0 {
		t.Errorf("%s: docs/benchmarks.json has no peak RSS or CPU of %s", where, process)
		return
	}
	mem, memLimit, cpu := req.Memory(), lim.Memory(), req.Cpu()
	if got := float64(mem.Value()) / mib; got < peak {
		t.Errorf("%s requests %s of memory, below its measured peak RSS, %.0f MiB", where, mem.String(), peak)
	}
	if got := float64(memLimit.Value()) / mib; got < 1.5*peak {
		t.Errorf("%s is limited to %s of memory, less than 1.5 times its measured peak RSS, %.0f MiB", where, memLimit.String(), peak)
	}
	if got := float64(cpu.MilliValue()) / 1000; got < cores {
		t.Errorf("%s requests %s of CPU, below the %.2f cores it used during D (%.0f µs per order at %.0f orders/s)",
			where, cpu.String(), cores, b.D.Cost.CPU[process], b.D.Rate)
	}
	var goMemLimit string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			goMemLimit = e.Value
		}
	}
	n, ok := strings.CutSuffix(goMemLimit, "MiB")
	v, err := strconv.Atoi(n)
	if !ok || err != nil || float64(v) < peak || int64(v)*mib >= memLimit.Value() {
		t.Errorf("%s: GOMEMLIMIT %q, want N MiB between the peak RSS (%.0f MiB) and the limit (%s)", where, goMemLimit, peak, memLimit.String())
	}
}
