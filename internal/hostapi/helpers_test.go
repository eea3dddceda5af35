package hostapi_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bottlerocket-os/brupop-go/internal/hostapi"
)

// socketPath returns a socket path short enough for a Unix socket (108 bytes), removed after t.
func socketPath(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "api.sock")
}

// answer is one scripted answer of a fake host: a status code and a body.
type answer struct {
	code int
	body string
}

// script answers the requests to each "METHOD /path" in order, repeating the last answer.
type script struct {
	mu      sync.Mutex
	answers map[string][]answer
	hits    map[string]int
}

func (s *script) next(key string) (answer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.answers[key]
	if len(list) == 0 {
		return answer{}, false
	}
	i := min(s.hits[key], len(list)-1)
	s.hits[key]++
	return list[i], true
}

// fakeHost serves scripted answers on a Unix socket and returns a client for it.
func fakeHost(t *testing.T, answers map[string][]answer, opts hostapi.Options) *hostapi.Client {
	t.Helper()
	s := &script{answers: answers, hits: map[string]int{}}
	return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := s.next(r.Method + " " + r.URL.Path)
		if !ok {
			http.NotFound(w, r)
			return
		}
		if a.code == http.StatusOK {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.code)
		_, _ = w.Write([]byte(a.body))
	}), opts)
}

// serve runs h on a Unix socket until t ends and returns a fast client for it.
func serve(t *testing.T, h http.Handler, opts hostapi.Options) *hostapi.Client {
	t.Helper()
	path := socketPath(t)
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	opts.SocketPath = path
	return hostapi.New(fastOptions(opts))
}

// fastOptions fills the waits of opts with test-sized values.
func fastOptions(o hostapi.Options) hostapi.Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.RequestTimeout, 5*time.Second)
	def(&o.PollInterval, 2*time.Millisecond)
	def(&o.RetryBase, time.Millisecond)
	def(&o.RetryMax, 10*time.Millisecond)
	return o
}

// jumpClock is a Clock on which every wait ends at once and moves time forward by its length,
// so tests of deadlines and backoff run without waiting.
type jumpClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jumpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jumpClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// statusDoc is a status document with a most recent command of the given type, status and
// timestamp; an empty cmd means no command.
func statusDoc(state, cmd, cmdStatus, ts string) string {
	mrc := "null"
	if cmd != "" {
		mrc = `{"cmd_type":"` + cmd + `","cmd_status":"` + cmdStatus + `","timestamp":"` + ts +
			`","exit_status":` + map[bool]string{true: "0", false: "1"}[cmdStatus == "Success"] +
			`,"stderr":"Starting update to 1.26.2\nMetadata error: boom\n"}`
	}
	return `{"update_state":"` + state + `","available_updates":["1.26.2","1.26.1"],` +
		`"chosen_update":{"arch":"x86_64","version":"1.26.2","variant":"aws-k8s-1.31"},` +
		`"active_partition":{"image":{"arch":"x86_64","version":"1.26.1","variant":"aws-k8s-1.31"},"next_to_boot":true},` +
		`"staging_partition":null,"most_recent_command":` + mrc + `}`
}
