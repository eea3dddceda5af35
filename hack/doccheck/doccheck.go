// Package doccheck keeps the repository's comments and docs citing only what a clone has. No
// comment may cite a reference kept outside the repository: a numbered section of a spec or an
// item of a guide, a path under the shared directory, the style guide or the reference documents
// by file name. Every doc a Go comment names as docs/<name>.md must exist, with the heading quoted
// after it if there is one, and every relative Markdown link must resolve.
//
// Check walks a module root; the package's test runs it over this repository.
package doccheck

import (
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Finding is one citation that a clone of the repository cannot follow.
type Finding struct {
	// Path is the file's path relative to the root, with forward slashes.
	Path string
	// Line is the 1-based line of the citation.
	Line int
	// Problem says what is wrong, quoting the citation.
	Problem string
}

// String returns "path:line: problem".
func (f Finding) String() string { return fmt.Sprintf("%s:%d: %s", f.Path, f.Line, f.Problem) }

// outside matches citations of documents that live outside the repository: numbered sections
// of a spec, numbered items of a guide, and the reference files by path or name. The test's
// fixture shows each form.
var outside = regexp.MustCompile(`(?i)` + strings.Join([]string{
	`\bspec(?:ification)?\s+(?:(?:section|table|row)s?\s+)?\d+(?:\.\d+)+`,
	`\bspec(?:ification)?\s+(?:section|table|row)s?\s+\d+`,
	`\bsections?\s+\d+(?:\.\d+)*\b`,
	`§\s*\d`,
	`\b(?:habit|pitfall)\s+\d+`,
	`\bshared/`,
	`/work/`,
	`\bSTYLE\.md\b`,
	`(?:^|[^\w-])brupop\.md\b`,
	`\bbottlerocket-api\.md\b`,
	`\b(?:sim|envtest)-recipe\b`,
}, "|"))

// docRef matches a cited doc of the repository, docs/<name>.md, and the heading that may follow
// it after a comma, in double quotes.
var docRef = regexp.MustCompile(`\bdocs/([A-Za-z0-9_.-]+\.md)(?:,\s*"([^"]+)")?`)

// mdLink matches a relative link to a Markdown file in a Markdown document.
var mdLink = regexp.MustCompile(`\]\(([^):#\s]+\.md)(?:#[^)]*)?\)`)

// textFile reports whether a file other than Go source is checked for outside citations.
func textFile(name string) bool {
	switch filepath.Ext(name) {
	case ".md", ".yaml", ".yml", ".tpl", ".sh":
		return true
	}
	switch name {
	case "Makefile", "Dockerfile", "run":
		return true
	}
	return false
}

// Check walks the module at root and returns every citation a clone cannot follow, in the
// order of their paths and lines.
func Check(root string) ([]Finding, error) {
	c := checker{root: root, headings: map[string]map[string]bool{}}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".git" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case strings.HasSuffix(path, ".go"):
			if !strings.Contains(filepath.ToSlash(rel), "testdata/") {
				return c.goFile(rel)
			}
		case textFile(d.Name()):
			return c.textFile(rel)
		}
		return nil
	})
	sort.SliceStable(c.findings, func(i, j int) bool {
		a, b := c.findings[i], c.findings[j]
		return a.Path < b.Path || a.Path == b.Path && a.Line < b.Line
	})
	return c.findings, err
}

type checker struct {
	root     string
	findings []Finding
	// headings caches the headings of each doc, by its path relative to root.
	headings map[string]map[string]bool
}

func (c *checker) add(rel string, line int, format string, args ...any) {
	c.findings = append(c.findings, Finding{Path: filepath.ToSlash(rel), Line: line, Problem: fmt.Sprintf(format, args...)})
}

// goFile checks every comment of one Go file, each comment group as one text without its
// comment markers, so that a citation broken across lines is still seen.
func (c *checker) goFile(rel string) error {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(c.root, rel), nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return fmt.Errorf("doccheck: %w", err)
	}
	for _, g := range f.Comments {
		first := fset.Position(g.Pos()).Line
		var text strings.Builder
		line := first
		for _, cm := range g.List {
			// Keep line k of text on source line first+k.
			for l := fset.Position(cm.Pos()).Line; line < l; line++ {
				text.WriteByte('\n')
			}
			body := strings.TrimPrefix(cm.Text, "//")
			if strings.HasPrefix(cm.Text, "/*") {
				body = strings.TrimSuffix(strings.TrimPrefix(cm.Text, "/*"), "*/")
			}
			text.WriteString(body + " ")
			line += strings.Count(body, "\n")
		}
		c.text(rel, first, text.String())
	}
	return nil
}

// textFile checks a Markdown, YAML, shell or make file; a Markdown file's relative links to
// other Markdown files must resolve.
func (c *checker) textFile(rel string) error {
	data, err := os.ReadFile(filepath.Join(c.root, rel))
	if err != nil {
		return fmt.Errorf("doccheck: %w", err)
	}
	c.text(rel, 1, string(data))
	if filepath.Ext(rel) != ".md" {
		return nil
	}
	for _, m := range mdLink.FindAllStringSubmatchIndex(string(data), -1) {
		target := string(data[m[2]:m[3]])
		if strings.Contains(target, "://") {
			continue
		}
		if _, err := os.Stat(filepath.Join(c.root, filepath.Dir(rel), target)); err != nil {
			c.add(rel, lineAt(data, m[0]), "links to %s, which is not in the repository", target)
		}
	}
	return nil
}

// text checks one text that starts at line first of rel.
func (c *checker) text(rel string, first int, text string) {
	data := []byte(text)
	for _, m := range outside.FindAllStringIndex(text, -1) {
		cited := strings.TrimLeft(strings.Join(strings.Fields(text[m[0]:m[1]]), " "), "/(\"'` ")
		c.add(rel, first+lineAt(data, m[0])-1, "cites %q, which is outside the repository: cite docs/ instead", cited)
	}
	for _, m := range docRef.FindAllStringSubmatchIndex(text, -1) {
		line := first + lineAt(data, m[0]) - 1
		doc := "docs/" + text[m[2]:m[3]]
		heads, ok := c.docHeadings(doc)
		if !ok {
			c.add(rel, line, "cites %s, which does not exist", doc)
			continue
		}
		if m[4] < 0 {
			continue
		}
		if h := strings.Join(strings.Fields(text[m[4]:m[5]]), " "); !heads[h] {
			c.add(rel, line, "cites %s, %q, which is not a heading of %s", doc, h, doc)
		}
	}
}

// docHeadings returns the headings of the Markdown file doc (relative to root), false when it
// does not exist.
func (c *checker) docHeadings(doc string) (map[string]bool, bool) {
	if h, ok := c.headings[doc]; ok {
		return h, h != nil
	}
	data, err := os.ReadFile(filepath.Join(c.root, doc))
	if err != nil {
		c.headings[doc] = nil
		return nil, false
	}
	h := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
		}
		if t := strings.TrimLeft(line, "#"); !fenced && len(t) < len(line) && strings.HasPrefix(t, " ") {
			h[strings.TrimSpace(t)] = true
		}
	}
	c.headings[doc] = h
	return h, true
}

// lineAt returns the 1-based line of offset in data.
func lineAt(data []byte, offset int) int { return 1 + bytes.Count(data[:offset], []byte("\n")) }
