package apiserver

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/clock"

	"github.com/bottlerocket-os/brupop-go/internal/agentapi"
)

// TokenReviewer reviews agent tokens with the TokenReview API and caches the answers by the
// token's SHA-256, for TTL and at most MaxEntries tokens, so that a fleet of agents does not cost
// one TokenReview per request. Tokens themselves are never stored.
type TokenReviewer struct {
	// Client creates TokenReviews.
	Client kubernetes.Interface
	// Clock expires cache entries.
	Clock clock.PassiveClock
	// TTL is how long an answer is reused; zero disables the cache.
	TTL time.Duration
	// MaxEntries bounds the cache.
	MaxEntries int
	// OnLookup, when set, is told whether each review came from the cache.
	OnLookup func(hit bool)
	// Filter, when set, changes each TokenReview's status before it is used or cached. Tests
	// use it to drop the node extras of a real review, as an older kube-apiserver would.
	Filter func(*authenticationv1.TokenReviewStatus)

	mu    sync.Mutex
	cache map[[sha256.Size]byte]cachedReview
}

type cachedReview struct {
	review  Review
	expires time.Time
}

// Review returns what kube-apiserver says about token for audience agentapi.TokenAudience.
func (t *TokenReviewer) Review(ctx context.Context, token string) (Review, error) {
	key := sha256.Sum256([]byte(token))
	if rev, ok := t.lookup(key); ok {
		t.observe(true)
		return rev, nil
	}
	t.observe(false)
	tr, err := t.Client.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{agentapi.TokenAudience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return Review{}, fmt.Errorf("apiserver: create TokenReview: %w", err)
	}
	if t.Filter != nil {
		t.Filter(&tr.Status)
	}
	rev := Review{
		Authenticated: tr.Status.Authenticated,
		Audiences:     tr.Status.Audiences,
		User:          tr.Status.User,
		Error:         tr.Status.Error,
	}
	// Only successes are cached: a forged token must not push valid entries out of the cache.
	if rev.Authenticated {
		t.store(key, rev)
	}
	return rev, nil
}

func (t *TokenReviewer) lookup(key [sha256.Size]byte) (Review, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.cache[key]
	if !ok {
		return Review{}, false
	}
	if !t.clock().Now().Before(e.expires) {
		delete(t.cache, key)
		return Review{}, false
	}
	return e.review, true
}

func (t *TokenReviewer) store(key [sha256.Size]byte, rev Review) {
	if t.TTL <= 0 || t.MaxEntries <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock().Now()
	if t.cache == nil {
		t.cache = map[[sha256.Size]byte]cachedReview{}
	}
	if len(t.cache) >= t.MaxEntries {
		for k, e := range t.cache {
			if !now.Before(e.expires) {
				delete(t.cache, k)
			}
		}
	}
	// Still full: drop arbitrary entries (map order is random); they are at most TTL old.
	for k := range t.cache {
		if len(t.cache) < t.MaxEntries {
			break
		}
		delete(t.cache, k)
	}
	t.cache[key] = cachedReview{review: rev, expires: now.Add(t.TTL)}
}

// Len returns the number of cached reviews.
func (t *TokenReviewer) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.cache)
}

func (t *TokenReviewer) observe(hit bool) {
	if t.OnLookup != nil {
		t.OnLookup(hit)
	}
}

func (t *TokenReviewer) clock() clock.PassiveClock {
	if t.Clock == nil {
		return clock.RealClock{}
	}
	return t.Clock
}
