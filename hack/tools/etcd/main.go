// Command etcd wraps etcd's server main so that `make tools` can build a pinned etcd from the Go
// module proxy: go.etcd.io/etcd/server/v3 has no main package of its own.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
