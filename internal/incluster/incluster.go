package incluster

import (
	"os"
	"strings"
)

// NamespaceFile is where Kubernetes mounts the namespace of a pod's ServiceAccount, which is
// the pod's own namespace.
const NamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// Namespace returns the namespace written in file (NamespaceFile in a pod), without surrounding
// white space, or def when the file is missing, unreadable or empty (outside a pod, or with
// automountServiceAccountToken: false).
func Namespace(file, def string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return def
	}
	if ns := strings.TrimSpace(string(b)); ns != "" {
		return ns
	}
	return def
}
