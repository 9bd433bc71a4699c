package onec

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// VerifyBearer reports whether authorizationHeader, the value of the Authorization
// header, is "Bearer <token>" with token equal to expected. The scheme is matched
// case-insensitively (RFC 9110 §11.1). It is false when expected is empty, so an
// unset ONEC_TOKEN never accepts a request. The comparison runs in constant time over
// SHA-256 digests, which hides the token's length as well as its content.
func VerifyBearer(expected, authorizationHeader string) bool {
	if expected == "" {
		return false
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(authorizationHeader), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return false
	}
	e := sha256.Sum256([]byte(expected))
	g := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(e[:], g[:]) == 1
}
