package waba

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/url"
	"strings"
)

// SignatureHeader is the header that carries the webhook body's signature.
const SignatureHeader = "X-Hub-Signature-256"

const signaturePrefix = "sha256="

// VerifySignature reports whether header, the value of X-Hub-Signature-256, is
// "sha256=" followed by the hex HMAC-SHA256 of body keyed with appSecret. body must be
// the raw request bytes exactly as received. An empty secret or a missing or malformed
// header (wrong prefix, bad hex, wrong length) never verifies.
func VerifySignature(appSecret, body []byte, header string) bool {
	sig, ok := strings.CutPrefix(header, signaturePrefix)
	if !ok || len(appSecret) == 0 || len(sig) != 2*sha256.Size {
		return false
	}
	got := make([]byte, sha256.Size)
	if _, err := hex.Decode(got, []byte(sig)); err != nil {
		return false
	}
	mac := hmac.New(sha256.New, appSecret)
	mac.Write(body)
	return hmac.Equal(mac.Sum(nil), got)
}

// VerifyHandshake checks Meta's GET subscription handshake: hub.mode must be
// "subscribe" and hub.verify_token must equal verifyToken (compared in constant
// time). On success it returns hub.challenge, which the endpoint answers verbatim
// with 200. An empty verifyToken or an empty challenge never verifies.
func VerifyHandshake(verifyToken string, query url.Values) (challenge string, ok bool) {
	challenge = query.Get("hub.challenge")
	if verifyToken == "" || challenge == "" || query.Get("hub.mode") != "subscribe" {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(query.Get("hub.verify_token")), []byte(verifyToken)) != 1 {
		return "", false
	}
	return challenge, true
}
