package okdesk

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"strings"
)

// VerifyBasic reports whether authorizationHeader (the raw Authorization header value)
// carries HTTP Basic credentials equal to user and pass. Both parts are compared in
// constant time, always both of them, over SHA-256 digests so that neither the length
// nor the position of a mismatch leaks. An empty user or pass never verifies: an
// unconfigured secret must not accept anything.
func VerifyBasic(user, pass, authorizationHeader string) bool {
	if user == "" || pass == "" {
		return false
	}
	scheme, cred, ok := strings.Cut(strings.TrimSpace(authorizationHeader), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return false
	}
	gotUser, gotPass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return false
	}
	userOK := equalDigest(gotUser, user)
	passOK := equalDigest(gotPass, pass)
	return userOK&passOK == 1
}

// equalDigest compares a and b in constant time, independent of their lengths.
func equalDigest(a, b string) int {
	da := sha256.Sum256([]byte(a))
	db := sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(da[:], db[:])
}
