package check

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// k8sDir is where the manifests live, in the repository and in the
// in-memory copy that is rendered.
const k8sDir = "deploy/k8s"

// manifests are the objects a kustomization renders, decoded into the
// Kubernetes API types, by name. Generated ConfigMaps and Secrets are under
// the name the manifests give them, without kustomize's hash suffix
// (generatedName maps the rendered name back).
type manifests struct {
	deployments   map[string]*appsv1.Deployment
	services      map[string]*corev1.Service
	pdbs          map[string]*policyv1.PodDisruptionBudget
	jobs          map[string]*batchv1.Job
	configMaps    map[string]*corev1.ConfigMap
	secrets       map[string]*corev1.Secret
	namespaces    map[string]*corev1.Namespace
	generatedName map[string]string // rendered name → name in the manifests
}

// render builds the kustomization at dir (under deploy/k8s) with
// kustomize's Go API, as `kubectl kustomize` does, from an in-memory copy
// of deploy/k8s in which every FILE.env.example stands for the FILE.env a
// site writes with its secrets (a real one on this disk is never read).
// Every object is then decoded strictly (decodeStrict).
func render(t *testing.T, dir string) manifests {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	src := filepath.Join(root, k8sDir)
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".env") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		dst := filepath.Join("/", k8sDir, strings.TrimSuffix(rel, ".example"))
		if err := mem.MkdirAll(filepath.Dir(dst)); err != nil {
			return err
		}
		return mem.WriteFile(dst, raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, filepath.Join("/", k8sDir, dir))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	m := manifests{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, jobs: map[string]*batchv1.Job{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		namespaces: map[string]*corev1.Namespace{}, generatedName: map[string]string{},
	}
	for _, r := range resources.Resources() {
		raw, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, err := decodeStrict(raw)
		if err != nil {
			t.Errorf("%s %s: %v", r.GetKind(), r.GetName(), err)
			continue
		}
		name := r.GetName()
		if r.GetKind() == "ConfigMap" || r.GetKind() == "Secret" {
			// A generated object's name ends in a hash of its content,
			// which changes with every value.
			if base := hashSuffix.ReplaceAllString(name, ""); base != name {
				m.generatedName[name] = base
				name = base
			}
		}
		var dup bool
		switch o := obj.(type) {
		case *appsv1.Deployment:
			dup = put(m.deployments, name, o)
		case *corev1.Service:
			dup = put(m.services, name, o)
		case *policyv1.PodDisruptionBudget:
			dup = put(m.pdbs, name, o)
		case *batchv1.Job:
			dup = put(m.jobs, name, o)
		case *corev1.ConfigMap:
			dup = put(m.configMaps, name, o)
		case *corev1.Secret:
			dup = put(m.secrets, name, o)
		case *corev1.Namespace:
			dup = put(m.namespaces, name, o)
		default:
			t.Errorf("%s %s: a kind these checks do not know; teach them", r.GetKind(), r.GetName())
		}
		if dup {
			t.Errorf("two %s called %s", r.GetKind(), name)
		}
	}
	return m
}

func put[T any](m map[string]T, name string, v T) (dup bool) {
	_, dup = m[name]
	m[name] = v
	return dup
}

// hashSuffix is the suffix kustomize gives a generated ConfigMap's or
// Secret's name: a hash of its content, so that pods referring to it roll
// when it changes.
var hashSuffix = regexp.MustCompile(`-[2456789bcdfghkmt]{10}$`)

// scheme knows the API groups the manifests use, and no other: an object
// of another kind fails to decode.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{appsv1.AddToScheme, corev1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strictSerializer decodes YAML into the API types as the API server's
// strict field validation does: a field the type does not have, or one
// given twice, is an error, not silently dropped.
var strictSerializer = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

// decodeStrict decodes one object of raw YAML into its API type.
func decodeStrict(raw []byte) (runtime.Object, error) {
	obj, gvk, err := strictSerializer.Decode(raw, nil, nil)
	if err != nil {
		return nil, err
	}
	if gvk == nil || gvk.Version == "" || gvk.Kind == "" {
		return nil, fmt.Errorf("no apiVersion or kind")
	}
	return obj, nil
}

// TestStrictDecodingRefusesUnknownFields shows the decoding the manifests
// go through catching what a lenient one would drop: a misspelt field, a
// field at the wrong level, a field given twice, a kind the checks do not
// know.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	good := `apiVersion: apps/v1
kind: Deployment
metadata: {name: relay}
spec:
  replicas: 2
  selector: {matchLabels: {app: relay}}
  template:
    metadata: {labels: {app: relay}}
    spec:
      containers:
        - name: relay
          image: alpes
          readinessProbe: {httpGet: {path: /readyz, port: 8081}}
`
	if _, err := decodeStrict([]byte(good)); err != nil {
		t.Fatalf("a valid Deployment: %v", err)
	}
	for what, bad := range map[string]string{
		"misspelt":     strings.Replace(good, "replicas: 2", "replica: 2", 1),
		"wrong level":  strings.Replace(good, "readinessProbe: {httpGet: {path: /readyz, port: 8081}}", "readinessProbe: {path: /readyz, port: 8081}", 1),
		"given twice":  strings.Replace(good, "replicas: 2", "replicas: 2\n  replicas: 3", 1),
		"unknown kind": strings.Replace(good, "kind: Deployment", "kind: Deploymnet", 1),
	} {
		if _, err := decodeStrict([]byte(bad)); err == nil {
			t.Errorf("%s: decoded without an error", what)
		}
	}
}
