package incluster

import (
	"os"
	"path/filepath"
	"testing"
)

func TestNamespace(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name, file, want string
	}{
		{"written by the kubelet", write("ns", "team-a"), "team-a"},
		{"trailing newline", write("nl", "team-b\n"), "team-b"},
		{"empty", write("empty", " \n"), "def"},
		{"missing", filepath.Join(dir, "absent"), "def"},
		{"a directory", dir, "def"},
	} {
		if got := Namespace(c.file, "def"); got != c.want {
			t.Errorf("%s: Namespace = %q, want %q", c.name, got, c.want)
		}
	}
}
