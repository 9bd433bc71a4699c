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

// adminOff reports whether path is under the admin API while it is switched off.
func (s *Server) adminOff(path string) bool {
	return s.cfg.AdminToken == "" && (path == adminPrefix || strings.HasPrefix(path, adminPrefix+"/"))
}

// adminAuth guards /api/v1: 404 while FIXIT_ADMIN_TOKEN is unset (the API does not
// exist), 401 with a Bearer challenge for a missing or wrong token.
func (s *Server) adminAuth(c *gin.Context) {
	if s.cfg.AdminToken == "" {
		fail(c, http.StatusNotFound, adminOffMsg)
		return
	}
	token, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		unauthorized(c, challengeAdmin, "missing bearer token: send Authorization: Bearer <FIXIT_ADMIN_TOKEN>")
		return
	}
	if !equalSecret(token, s.cfg.AdminToken) {
		unauthorized(c, challengeAdmin, "invalid bearer token")
		return
	}
	c.Next()
}

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
