package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"
)

// Session is one signed-in person: who, with which role, and the token their
// forms must carry (CSRF). The bearer token they signed in with is not kept.
type Session struct {
	Name string
	Role int
	// CSRF is the value every form of the session carries back.
	CSRF    string
	Created time.Time
	Seen    time.Time
	// flash is the message the next page shows once (after a form's redirect).
	flash *Flash
}

// Flash is a message shown once on the next page: Kind is "ok" or "error".
type Flash struct {
	Kind, Text string
}

// Sessions keeps the console's sessions in memory. A session ends after Idle
// without a request, MaxAge after sign-in, at sign-out, or when the process
// ends. The map is keyed by a digest of the session id, so the ids themselves
// are not kept. Safe for concurrent use.
type Sessions struct {
	mu     sync.Mutex
	byHash map[[32]byte]*Session
	idle   time.Duration
	maxAge time.Duration
	limit  int
	now    func() time.Time
}

// Default lifetimes of a session.
const (
	DefaultIdle   = 30 * time.Minute
	DefaultMaxAge = 12 * time.Hour
	// DefaultLimit bounds the number of live sessions; the least recently seen
	// session ends when a new one would pass it.
	DefaultLimit = 1000
)

// NewSessions returns an empty store; now is the clock (nil: time.Now).
func NewSessions(idle, maxAge time.Duration, now func() time.Time) *Sessions {
	if now == nil {
		now = time.Now
	}
	return &Sessions{byHash: map[[32]byte]*Session{}, idle: idle, maxAge: maxAge, limit: DefaultLimit, now: now}
}

// NewToken returns 32 random bytes in URL-safe base64: a session id or a CSRF value.
func NewToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Create starts a session and returns its id (the cookie's value) and the session.
func (s *Sessions) Create(name string, role int) (string, Session) {
	id := NewToken()
	now := s.now()
	sess := &Session{Name: name, Role: role, CSRF: NewToken(), Created: now, Seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if len(s.byHash) >= s.limit {
		var oldest [32]byte
		first := true
		for h, v := range s.byHash {
			if first || v.Seen.Before(s.byHash[oldest].Seen) {
				oldest, first = h, false
			}
		}
		delete(s.byHash, oldest)
	}
	s.byHash[sha256.Sum256([]byte(id))] = sess
	return id, *sess
}

// Get returns the live session of id and marks it seen.
func (s *Sessions) Get(id string) (Session, bool) {
	if id == "" {
		return Session{}, false
	}
	h := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byHash[h]
	if !ok {
		return Session{}, false
	}
	if s.expired(sess, now) {
		delete(s.byHash, h)
		return Session{}, false
	}
	sess.Seen = now
	out := *sess
	out.flash = nil
	return out, true
}

// Delete ends the session of id (sign-out).
func (s *Sessions) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byHash, sha256.Sum256([]byte(id)))
}

// SetFlash keeps a message for the session's next page.
func (s *Sessions) SetFlash(id string, f Flash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.byHash[sha256.Sum256([]byte(id))]; ok {
		sess.flash = &f
	}
}

// TakeFlash returns the session's message for its next page, once.
func (s *Sessions) TakeFlash(id string) *Flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.byHash[sha256.Sum256([]byte(id))]
	if !ok {
		return nil
	}
	f := sess.flash
	sess.flash = nil
	return f
}

// Len counts the live sessions.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.now())
	return len(s.byHash)
}

func (s *Sessions) expired(sess *Session, now time.Time) bool {
	return now.Sub(sess.Seen) >= s.idle || now.Sub(sess.Created) >= s.maxAge
}

// sweep drops the expired sessions; the caller holds mu.
func (s *Sessions) sweep(now time.Time) {
	for h, sess := range s.byHash {
		if s.expired(sess, now) {
			delete(s.byHash, h)
		}
	}
}

// SameToken compares a form's CSRF value with the session's in constant time.
func SameToken(got, want string) bool {
	if want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
