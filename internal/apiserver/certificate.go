package apiserver

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// CertificateReloader serves the certificate in CertFile and KeyFile to TLS handshakes and
// picks up new files (a rotated Secret) without a restart: at most once per CheckInterval a
// handshake re-reads both files, and when they changed and form a valid pair, it is used from
// then on. A broken pair is reported to OnError and the last good one kept.
type CertificateReloader struct {
	CertFile, KeyFile string
	// Clock times the checks.
	Clock clock.PassiveClock
	// CheckInterval is the least time between two reads of the files; zero means one second.
	CheckInterval time.Duration
	// OnReload, when set, is called after a new certificate was loaded.
	OnReload func()
	// OnError, when set, is called when the files changed but could not be loaded.
	OnError func(error)

	mu             sync.Mutex
	cert           *tls.Certificate
	certPEM, keyPM []byte
	checked        time.Time
}

// Load reads the files; it fails when they are not a valid certificate and key.
func (c *CertificateReloader) Load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.reload()
	return err
}

// GetCertificate is a tls.Config.GetCertificate that reloads the files when they change.
func (c *CertificateReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock().Now()
	if c.cert == nil || now.Sub(c.checked) >= c.interval() {
		c.checked = now
		changed, err := c.reload()
		switch {
		case err != nil && c.OnError != nil:
			c.OnError(err)
		case changed && c.OnReload != nil:
			c.OnReload()
		}
	}
	if c.cert == nil {
		return nil, fmt.Errorf("apiserver: no serving certificate loaded from %s", c.CertFile)
	}
	return c.cert, nil
}

// reload reads the files and, if they changed, parses them; c.mu is held.
func (c *CertificateReloader) reload() (bool, error) {
	certPEM, err := os.ReadFile(c.CertFile)
	if err != nil {
		return false, fmt.Errorf("apiserver: read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return false, fmt.Errorf("apiserver: read key: %w", err)
	}
	if c.cert != nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPM) {
		return false, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("apiserver: load %s and %s: %w", c.CertFile, c.KeyFile, err)
	}
	c.cert, c.certPEM, c.keyPM = &cert, certPEM, keyPEM
	return true, nil
}

func (c *CertificateReloader) interval() time.Duration {
	if c.CheckInterval <= 0 {
		return time.Second
	}
	return c.CheckInterval
}

func (c *CertificateReloader) clock() clock.PassiveClock {
	if c.Clock == nil {
		return clock.RealClock{}
	}
	return c.Clock
}
