package doccheck_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bottlerocket-os/brupop-go/hack/doccheck"
)

// TestRepositoryCitesOnlyItself fails on every comment or doc of this module that cites a
// document a clone does not have.
func TestRepositoryCitesOnlyItself(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	findings, err := doccheck.Check(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		t.Error(f)
	}
}

// TestCheckFindsBadCitations runs Check over a small module holding one comment of each kind it
// must reject, and the kinds it must accept.
func TestCheckFindsBadCitations(t *testing.T) {
	root := t.TempDir()
	write(t, root, "docs/upstream.md", "# Upstream\n\n## Next state\n\n```sh\n# not a heading\n```\n")
	write(t, root, "a/a.go", `// Package a cites things.
package a

// Bad: upstream's transitions (spec 3.3).
// Bad: the table of spec
// section 3.2, broken across lines.
// Bad: see shared/spec/brupop.md.
// Bad: the habits of STYLE.md.
// Bad: bottlerocket-api.md, section 5.
// Bad: docs/missing.md.
// Bad: docs/upstream.md, "No such heading".
// Bad: docs/upstream.md, "not a heading".
var A int

// Good: docs/upstream.md, "Next
// state"; the spec's state, spec.version, 3.3 seconds.
var B int
`)
	write(t, root, "b/b.go", "package b\n\n/* Bad: a guide's habit 7. */ var C int\n")
	write(t, root, "docs/bad.md", "See [the spec](../shared/spec/brupop.md) and [gone](gone.md); [ok](upstream.md#next-state).\n")
	write(t, root, "Makefile", "lint: ## Run golangci-lint with the import rules of shared/STYLE.md.\n")

	findings, err := doccheck.Check(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range findings {
		got = append(got, fmt.Sprintf("%s:%d", f.Path, f.Line))
	}
	// One entry per "Bad" citation of the fixture (two where a line cites twice), none for the
	// "Good" ones.
	want := []string{
		"Makefile:1", "Makefile:1",
		"a/a.go:4",
		"a/a.go:5",
		"a/a.go:7", "a/a.go:7",
		"a/a.go:8",
		"a/a.go:9", "a/a.go:9",
		"a/a.go:10",
		"a/a.go:11",
		"a/a.go:12", // a shell comment in a fenced block is no heading
		"b/b.go:3",
		"docs/bad.md:1", "docs/bad.md:1", "docs/bad.md:1", "docs/bad.md:1",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("findings (-want +got):\n%s\nall:\n%s", diff, join(findings))
	}
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func join(fs []doccheck.Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}
