package apiserver

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// writePair writes a self-signed certificate named cn and its key, and returns the DER.
func writePair(t *testing.T, dir, cn string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key) // SEC 1, not PKCS#8: any key Go reads
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return der
}

func TestCertificateReloaderPicksUpNewFiles(t *testing.T) {
	dir := t.TempDir()
	first := writePair(t, dir, "first")
	clk := clocktesting.NewFakePassiveClock(time.Unix(0, 0))
	var errs, reloads int
	r := &CertificateReloader{
		CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"), Clock: clk,
		OnError: func(error) { errs++ }, OnReload: func() { reloads++ },
	}
	if err := r.Load(); err != nil {
		t.Fatal(err)
	}
	served := func() []byte {
		t.Helper()
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	if !bytes.Equal(served(), first) {
		t.Fatal("first certificate not served")
	}
	second := writePair(t, dir, "second")
	if !bytes.Equal(served(), first) {
		t.Error("files re-read before the check interval passed")
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if !bytes.Equal(served(), second) || reloads != 1 {
		t.Errorf("rotated certificate not served after the check interval (reloads %d)", reloads)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.SetTime(clk.Now().Add(time.Second))
	if !bytes.Equal(served(), second) || errs != 1 {
		t.Errorf("a broken key must keep the last good certificate and report once (errors %d)", errs)
	}
}
