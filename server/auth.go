package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// Challenges sent with 401 answers (RFC 9110 §11.6.1).
const (
	challengeAdmin  = `Bearer realm="fixit admin"`
	challengeOkdesk = `Basic realm="fixit okdesk", charset="UTF-8"`
	challengeOneC   = `Bearer realm="fixit onec"`
)

const adminOffMsg = "admin API is off: FIXIT_ADMIN_TOKEN is not set"

// Roles of the admin API's callers.
const (
	roleViewer   = 1 // reads
	roleOperator = 2 // reads and uses the dialog controls
	roleAdmin    = 3 // everything, reloads too
)

// principal is who called: a name for the history and a role.
type principal struct {
	name string
	role int
}

// ctxKeyWho holds the caller's principal in a request's context.
const ctxKeyWho = "fixit.who"

// who returns the caller of an authenticated request.
func who(c *gin.Context) principal {
	p, _ := c.Get(ctxKeyWho)
	w, _ := p.(principal)
	return w
}

// lookup finds the principal whose token is token. Every token is compared, in
// constant time, whatever matches: a timing never tells how many tokens there are
// or which one came close.
func (s *Server) lookup(token string) (principal, bool) {
	found, ok := principal{}, false
	if equalSecret(token, s.cfg.AdminToken) {
		found, ok = principal{name: "admin", role: roleAdmin}, true
	}
	for _, g := range []struct {
		tokens map[string]string
		role   int
	}{{s.cfg.Operators, roleOperator}, {s.cfg.Viewers, roleViewer}} {
		for name, t := range g.tokens {
			if equalSecret(token, t) && !ok {
				found, ok = principal{name: name, role: g.role}, true
			}
		}
	}
	return found, ok
}

// adminAuth guards /api/v1: 404 while FIXIT_ADMIN_TOKEN is unset (the API does not
// exist), 401 with a Bearer challenge for a missing or unknown token. The token
// names the caller: the administrator, an operator (FIXIT_OPERATORS) or a viewer
// (FIXIT_VIEWERS).
func (s *Server) adminAuth(c *gin.Context) {
	if s.authorized(c) {
		c.Next()
	}
}

// authorized names the caller of an admin path (see adminAuth), or answers 404 or
// 401 and returns false.
func (s *Server) authorized(c *gin.Context) bool {
	if s.cfg.AdminToken == "" {
		fail(c, http.StatusNotFound, adminOffMsg)
		return false
	}
	token, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		unauthorized(c, challengeAdmin, "missing bearer token: send Authorization: Bearer <your token>")
		return false
	}
	p, ok := s.lookup(token)
	if !ok {
		unauthorized(c, challengeAdmin, "invalid bearer token")
		return false
	}
	c.Set(ctxKeyWho, p)
	return true
}

// isAdminPath says whether path is under the admin API.
func isAdminPath(path string) bool {
	return path == adminPrefix || strings.HasPrefix(path, adminPrefix+"/")
}

// need lets through callers of at least role; others get 403.
func need(role int) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !allowed(who(c), role) {
			what := "an operator's or the administrator's"
			if role == roleAdmin {
				what = "the administrator's"
			}
			fail(c, http.StatusForbidden, "forbidden: this needs "+what+" token")
			return
		}
		c.Next()
	}
}

// allowed reports whether p may do what needs role: the one rule of the admin
// API and the console.
func allowed(p principal, role int) bool { return p.role >= role }

// unauthorized answers 401 with a WWW-Authenticate challenge ("" = none).
func unauthorized(c *gin.Context, challenge, msg string) {
	if challenge != "" {
		c.Header("WWW-Authenticate", challenge)
	}
	fail(c, http.StatusUnauthorized, msg)
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" header; the
// scheme is case-insensitive (RFC 9110 §11.1).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// equalSecret compares got with want in constant time over SHA-256 digests, so that
// neither the content nor the length of want leaks. An empty want never matches.
func equalSecret(got, want string) bool {
	if want == "" {
		return false
	}
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
