package agentapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	v2 "github.com/bottlerocket-os/brupop-go/api/v2"
)

// request is what the test server saw of one request.
type request struct {
	Method, Path                       string
	NodeName, NodeUID, Token, Deadline string
	ContentType                        string
	Body                               string
}

// server is an HTTPS server with a certificate that can be swapped, answering every request
// with the next answer of the test.
type server struct {
	*httptest.Server
	cert atomic.Pointer[tls.Certificate]

	mu       sync.Mutex
	requests []request
	code     int
	body     string
	deadline string // answered in HeaderDrainDeadline when set
}

func newServer(t *testing.T, cert tls.Certificate) *server {
	t.Helper()
	s := &server{code: http.StatusOK}
	s.cert.Store(&cert)
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Per connection, so that a swapped certificate serves the next handshake.
	s.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return &tls.Config{Certificates: []tls.Certificate{*s.cert.Load()}, MinVersion: tls.VersionTLS12}, nil
	}}
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func (s *server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, request{
		Method: r.Method, Path: r.URL.Path,
		NodeName: r.Header.Get(HeaderNodeName), NodeUID: r.Header.Get(HeaderNodeUID), Token: r.Header.Get(HeaderToken),
		Deadline: r.Header.Get(HeaderDrainDeadline), ContentType: r.Header.Get("Content-Type"), Body: string(body),
	})
	code, answer, deadline := s.code, s.body, s.deadline
	s.mu.Unlock()
	if deadline != "" {
		w.Header().Set(HeaderDrainDeadline, deadline)
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, answer)
}

// answer makes the server answer code and body from now on.
func (s *server) answer(code int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.code, s.body = code, body
}

// holdTo makes the server answer deadline in HeaderDrainDeadline from now on ("": none).
func (s *server) holdTo(deadline string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deadline = deadline
}

// last returns the last request the server saw.
func (s *server) last(t *testing.T) request {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		t.Fatal("the server saw no request")
	}
	return s.requests[len(s.requests)-1]
}

// selfSigned returns a self-signed certificate for 127.0.0.1 and its PEM.
func selfSigned(t *testing.T, name string) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// env is a server, a client of it and the files the client reads.
type env struct {
	srv               *server
	c                 *Client
	tokenPath, caPath string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cert, caPEM := selfSigned(t, "ca-1")
	dir := t.TempDir()
	e := &env{srv: newServer(t, cert), tokenPath: filepath.Join(dir, "token"), caPath: filepath.Join(dir, "ca.crt")}
	e.write(t, e.tokenPath, "token-1\n")
	e.write(t, e.caPath, string(caPEM))
	e.c = &Client{BaseURL: e.srv.URL + "/", NodeName: "node-a", NodeUID: "uid-a", TokenPath: e.tokenPath, CAPath: e.caPath, Timeout: 5 * time.Second}
	return e
}

// write replaces the file at path atomically, as the kubelet updates mounted files.
func (e *env) write(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Error(err)
	}
}

func TestClientSendsTheContract(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.srv.answer(http.StatusOK, `{"metadata":{"name":"brs-node-a"}}`)
	brs, err := e.c.CreateShadow(ctx)
	if err != nil || brs.Name != "brs-node-a" {
		t.Fatalf("CreateShadow = %v, %v", brs, err)
	}
	var sel CreateShadowRequest
	got := e.srv.last(t)
	if err := json.Unmarshal([]byte(got.Body), &sel); err != nil || sel.NodeSelector != (NodeSelector{NodeName: "node-a", NodeUID: "uid-a"}) {
		t.Errorf("create body %q (%v), want the node selector of node-a", got.Body, err)
	}
	got.Body = ""
	want := request{Method: http.MethodPost, Path: PathShadow, NodeName: "node-a", NodeUID: "uid-a", Token: "token-1", ContentType: "application/json"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("create request (-want +got):\n%s", diff)
	}

	status := &v2.BottlerocketShadowStatus{CurrentVersion: "1.20.0", TargetVersion: "1.21.0", CurrentState: v2.StateIdle}
	if err := e.c.UpdateStatus(ctx, status); err != nil {
		t.Fatal(err)
	}
	var sent v2.BottlerocketShadowStatus
	if got := e.srv.last(t); got.Method != http.MethodPut || got.Path != PathShadow || json.Unmarshal([]byte(got.Body), &sent) != nil || !cmp.Equal(*status, sent) {
		t.Errorf("status request %+v, want PUT %s with the status", got, PathShadow)
	}

	deadline := time.Date(2026, 3, 1, 12, 30, 0, 0, time.FixedZone("CET", 3600))
	if held, err := e.c.CordonAndDrain(ctx, deadline); err != nil || !held.IsZero() {
		t.Fatalf("CordonAndDrain = %v, %v; want drained, no deadline from a server that names none", held, err)
	}
	if got := e.srv.last(t); got.Path != PathCordonAndDrain || got.Deadline != "2026-03-01T11:30:00Z" || got.Body != "" {
		t.Errorf("drain request %+v, want %s with the deadline in UTC and no body", got, PathCordonAndDrain)
	}
	// The server holds the drain to an earlier deadline (its cap): the client says so.
	e.srv.holdTo("2026-03-01T11:00:00Z")
	if held, err := e.c.CordonAndDrain(ctx, deadline); err != nil || !held.Equal(deadline.Add(-30*time.Minute)) {
		t.Errorf("CordonAndDrain = %v, %v; want drained, held to 11:00Z", held, err)
	}
	e.srv.holdTo("")
	if _, err := e.c.CordonAndDrain(ctx, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got := e.srv.last(t); got.Deadline != "" {
		t.Errorf("drain without a deadline sent %s %q", HeaderDrainDeadline, got.Deadline)
	}
	for path, call := range map[string]func(context.Context) error{
		PathUncordon: e.c.Uncordon, PathExcludeFromLB: e.c.ExcludeFromLB, PathRemoveExclusionFromLB: e.c.RemoveExclusionFromLB,
	} {
		if err := call(ctx); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if got := e.srv.last(t); got.Method != http.MethodPost || got.Path != path || got.Token != "token-1" {
			t.Errorf("request %+v, want POST %s with the token", got, path)
		}
	}
}

func TestClientReadsTheTokenOnEveryRequest(t *testing.T) {
	e := newEnv(t)
	for _, token := range []string{"token-1", "token-2"} {
		e.write(t, e.tokenPath, token+"\n")
		if err := e.c.Uncordon(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := e.srv.last(t).Token; got != token {
			t.Errorf("token sent %q, want %q", got, token)
		}
	}
	if err := os.Remove(e.tokenPath); err != nil {
		t.Fatal(err)
	}
	if err := e.c.Uncordon(context.Background()); err == nil {
		t.Error("a request without a token file succeeded")
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name       string
		code       int
		body       string
		notDrained bool
	}{
		{"unauthorized", http.StatusUnauthorized, "missing BrupopK8sAuthToken header\n", false},
		{"forbidden", http.StatusForbidden, "pod p runs on node b, not on node a\n", false},
		{"too large", http.StatusRequestEntityTooLarge, "body larger than 65536 bytes\n", false},
		{"server error", http.StatusInternalServerError, "drain: deadline passed\n", false},
		{"pods left", http.StatusServiceUnavailable, "drain: node a has 1 pods left: [app/db-0]\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.srv.answer(tt.code, tt.body)
			_, err := e.c.CordonAndDrain(context.Background(), time.Now().Add(time.Minute))
			if got := errors.Is(err, ErrNotDrained); got != tt.notDrained {
				t.Errorf("CordonAndDrain = %v: not drained %v, want %v", err, got, tt.notDrained)
			}
			err = e.c.Uncordon(context.Background())
			var se *StatusError
			if !errors.As(err, &se) || se.Code != tt.code || se.Message != tt.body[:len(tt.body)-1] {
				t.Errorf("Uncordon = %v, want a StatusError %d with the server's one-line reason", err, tt.code)
			}
			if errors.Is(err, ErrNotDrained) {
				t.Errorf("Uncordon = %v, which is not a drain", err)
			}
		})
	}
}

func TestClientPicksUpTheNewCA(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.c.Uncordon(ctx); err != nil {
		t.Fatal(err)
	}
	cert2, ca2 := selfSigned(t, "ca-2")
	e.srv.cert.Store(&cert2)
	e.srv.CloseClientConnections()
	if err := e.c.Uncordon(ctx); err == nil {
		t.Fatal("the client trusted a certificate its CA file does not hold")
	}
	e.write(t, e.caPath, string(ca2))
	if err := e.c.Uncordon(ctx); err != nil {
		t.Fatalf("after the CA file was rotated: %v", err)
	}
	e.write(t, e.caPath, "not a certificate")
	if err := e.c.Uncordon(ctx); err == nil {
		t.Error("a CA file without a certificate was accepted")
	}
}

func TestClientIsSafeForConcurrentUse(t *testing.T) {
	e := newEnv(t)
	_, ca2 := selfSigned(t, "ca-2")
	ca1, err := os.ReadFile(e.caPath)
	if err != nil {
		t.Fatal(err)
	}
	// The CA file keeps changing while requests run, so the client keeps rebuilding its HTTP
	// client; every version trusts the server's certificate.
	versions := []string{string(ca1) + string(ca2), string(ca2) + string(ca1)}
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 4 {
		wg.Go(func() {
			for j := range 10 {
				if i == 0 {
					e.write(t, e.caPath, versions[j%2])
				}
				errs <- e.c.Uncordon(context.Background())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
