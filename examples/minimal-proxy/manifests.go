package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/yaml"

	"github.com/proxykit/proxykit"
	"github.com/proxykit/proxykit/endpoints"
	"github.com/proxykit/proxykit/k8s"
	"github.com/proxykit/proxykit/servicemap"
)

// objects is what a set of manifests holds, converted to proxykit's
// model and keyed by identity.
type objects struct {
	services map[string]*servicemap.Service // "namespace/name"
	slices   map[string]*endpoints.Slice    // "namespace/name" of the slice
	nodes    map[string]proxykit.Node       // name
}

func newObjects() *objects {
	return &objects{
		services: map[string]*servicemap.Service{},
		slices:   map[string]*endpoints.Slice{},
		nodes:    map[string]proxykit.Node{},
	}
}

// ManifestError is a manifest that could not be read or converted: the
// file, the document in it (from 1) and its first line, the object (when
// known) and what is wrong, with the field path when there is one.
type ManifestError struct {
	File   string
	Doc    int // 0: the file as a whole
	Line   int
	Kind   string
	Object string // namespace/name, or name
	Err    error
}

func (e *ManifestError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Doc > 0 {
		fmt.Fprintf(&b, ": document %d (line %d)", e.Doc, e.Line)
	}
	if e.Kind != "" {
		fmt.Fprintf(&b, ": %s %q", e.Kind, e.Object)
	}
	msg := strings.ReplaceAll(e.Err.Error(), "\n", "; ")
	// A k8s.Error repeats kind and object; keep only its field errors.
	var ke *k8s.Error
	if errors.As(e.Err, &ke) && ke.Err != nil {
		msg = strings.ReplaceAll(ke.Err.Error(), "\n", "; ")
	}
	// sigs.k8s.io/yaml's wording adds nothing for a reader.
	msg = strings.Replace(msg, "error unmarshaling JSON: while decoding JSON: json: ", "", 1)
	return b.String() + ": " + msg
}

func (e *ManifestError) Unwrap() error { return e.Err }

// manifestFiles lists the manifest files of path: path itself when it is
// a file, else the *.yaml, *.yml and *.json files directly in the
// directory, sorted (hidden files are skipped, so editors' temporary
// files are not read).
func manifestFiles(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		switch filepath.Ext(n) {
		case ".yaml", ".yml", ".json":
			files = append(files, filepath.Join(path, n))
		}
	}
	slices.Sort(files)
	return files, nil
}

// document is one YAML document of a file.
type document struct {
	index, line int
	data        []byte
}

// splitDocuments splits a multi-document YAML stream at its "---" lines.
// Empty documents (only blanks and comments) are dropped.
func splitDocuments(data []byte) []document {
	var docs []document
	var cur bytes.Buffer
	start, line, n := 1, 0, 0
	flush := func(next int) {
		n++
		if hasContent(cur.Bytes()) {
			docs = append(docs, document{index: n, line: start, data: bytes.Clone(cur.Bytes())})
		}
		cur.Reset()
		start = next
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line++
		t := sc.Text()
		if t == "---" || strings.HasPrefix(t, "--- ") || strings.HasPrefix(t, "---\t") {
			flush(line + 1)
			continue
		}
		cur.WriteString(t)
		cur.WriteByte('\n')
	}
	flush(line + 1)
	return docs
}

func hasContent(b []byte) bool {
	for l := range strings.Lines(string(b)) {
		l = strings.TrimSpace(l)
		if l != "" && !strings.HasPrefix(l, "#") {
			return true
		}
	}
	return false
}

// parseFile reads one manifest file. Any bad document makes the whole
// file fail, with every problem joined (each a *ManifestError); objects of
// kinds other than Service, EndpointSlice and Node are skipped, and so
// are objects that kube-proxy would not serve (see k8s.Accept) or that
// convert to nothing (k8s.ErrIgnored).
func parseFile(name string, data []byte) (*objects, error) {
	out := newObjects()
	var errs []error
	for _, d := range splitDocuments(data) {
		if err := out.addDocument(name, d); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// addDocument converts one document into o.
func (o *objects) addDocument(file string, d document) error {
	fail := func(kind, obj string, err error) error {
		return &ManifestError{File: file, Doc: d.index, Line: d.line, Kind: kind, Object: obj, Err: err}
	}
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Namespace string            `json:"namespace"`
			Name      string            `json:"name"`
			Labels    map[string]string `json:"labels"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(d.data, &head); err != nil {
		return fail("", "", fmt.Errorf("not a Kubernetes object: %w", err))
	}
	ns := head.Metadata.Namespace
	if ns == "" {
		ns = "default"
	}
	key := ns + "/" + head.Metadata.Name
	switch {
	case head.Kind == "Service" && head.APIVersion == "v1":
		var svc corev1.Service
		if err := yaml.UnmarshalStrict(d.data, &svc); err != nil {
			return fail(head.Kind, key, err)
		}
		svc.Namespace = ns
		if !k8s.Accept(svc.Labels, "") {
			return nil
		}
		s, err := k8s.ConvertService(&svc)
		if err != nil {
			return fail(head.Kind, key, err)
		}
		if _, dup := o.services[key]; dup {
			return fail(head.Kind, key, errors.New("defined twice"))
		}
		o.services[key] = s
	case head.Kind == "EndpointSlice" && head.APIVersion == "discovery.k8s.io/v1":
		var es discoveryv1.EndpointSlice
		if err := yaml.UnmarshalStrict(d.data, &es); err != nil {
			return fail(head.Kind, key, err)
		}
		es.Namespace = ns
		if !k8s.Accept(es.Labels, "") {
			return nil
		}
		s, err := k8s.ConvertSlice(&es)
		switch {
		case errors.Is(err, k8s.ErrIgnored):
			return nil
		case err != nil:
			return fail(head.Kind, key, err)
		}
		if _, dup := o.slices[key]; dup {
			return fail(head.Kind, key, errors.New("defined twice"))
		}
		o.slices[key] = s
	case head.Kind == "Node" && head.APIVersion == "v1":
		key = head.Metadata.Name
		var n corev1.Node
		if err := yaml.UnmarshalStrict(d.data, &n); err != nil {
			return fail(head.Kind, key, err)
		}
		node, err := k8s.ConvertNode(&n)
		if err != nil {
			return fail(head.Kind, key, err)
		}
		if _, dup := o.nodes[key]; dup {
			return fail(head.Kind, key, errors.New("defined twice"))
		}
		o.nodes[key] = node
	case head.Kind == "":
		return fail("", "", errors.New("kind: missing"))
	}
	return nil
}

// merge adds the objects of other, which come from file, to o; objects
// already in o win and the duplicates are returned as errors.
func (o *objects) merge(file string, other *objects) []error {
	var errs []error
	dup := func(kind, key string) {
		errs = append(errs, &ManifestError{File: file, Kind: kind, Object: key, Err: errors.New("defined in an earlier file too; ignored here")})
	}
	for k, v := range other.services {
		if _, ok := o.services[k]; ok {
			dup("Service", k)
			continue
		}
		o.services[k] = v
	}
	for k, v := range other.slices {
		if _, ok := o.slices[k]; ok {
			dup("EndpointSlice", k)
			continue
		}
		o.slices[k] = v
	}
	for k, v := range other.nodes {
		if _, ok := o.nodes[k]; ok {
			dup("Node", k)
			continue
		}
		o.nodes[k] = v
	}
	return errs
}

// loadManifests reads every manifest file of path once (for render,
// explain and tests). Any error fails it.
func loadManifests(path string) (*objects, error) {
	files, err := manifestFiles(path)
	if err != nil {
		return nil, err
	}
	all := newObjects()
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		o, err := parseFile(f, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, all.merge(f, o)...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return all, nil
}

// node returns the proxy's node: the Node object called name if the
// manifests have one, else a node with only that name.
func (o *objects) node(name string) proxykit.Node {
	if n, ok := o.nodes[name]; ok {
		return n
	}
	return proxykit.Node{Name: name}
}

// snapshot builds a full snapshot of the objects for node.
func (o *objects) snapshot(node proxykit.Node) (*proxykit.Snapshot, error) {
	var svcs []*servicemap.Service
	for _, k := range sortedKeys(o.services) {
		svcs = append(svcs, o.services[k])
	}
	var sls []*endpoints.Slice
	for _, k := range sortedKeys(o.slices) {
		sls = append(sls, o.slices[k])
	}
	return proxykit.NewSnapshot(node, svcs, sls)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
