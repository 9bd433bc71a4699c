package telegram

import (
	"crypto/sha256"
	"crypto/subtle"
)

// SecretHeader is the header in which Telegram presents the secret_token given to
// setWebhook.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// VerifySecret reports whether got, the value of the X-Telegram-Bot-Api-Secret-Token
// header, equals the configured secret expected. It is false when either is empty,
// so an unset secret never accepts a request. The comparison runs in constant time
// over SHA-256 digests, which hides the secret's length as well as its content.
func VerifySecret(expected, got string) bool {
	if expected == "" || got == "" {
		return false
	}
	e := sha256.Sum256([]byte(expected))
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(e[:], g[:]) == 1
}
