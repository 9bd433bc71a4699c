package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/fixit-exchange/fixit/connectors/okdesk"
	"github.com/fixit-exchange/fixit/connectors/onec"
	"github.com/fixit-exchange/fixit/connectors/telegram"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Results of the EventsIn counter.
const (
	resultStored    = "stored"
	resultDuplicate = "duplicate"
	resultRejected  = "rejected"
)

// webhookAnswer is the 200 answer of every webhook.
type webhookAnswer struct {
	Received   int `json:"received"`
	Duplicates int `json:"duplicates"`
}

// wabaHandshake answers Meta's GET subscription handshake with hub.challenge.
func (s *Server) wabaHandshake(c *gin.Context) {
	if s.cfg.VerifyToken == "" {
		fail(c, http.StatusServiceUnavailable, "WhatsApp webhook verification is not configured: set WABA_VERIFY_TOKEN")
		return
	}
	challenge, ok := waba.VerifyHandshake(s.cfg.VerifyToken, c.Request.URL.Query())
	if !ok {
		fail(c, http.StatusForbidden, "verification failed: hub.mode must be subscribe, hub.verify_token must match and hub.challenge must be set")
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", []byte(challenge))
}

// wabaWebhook takes a Cloud API notification. The signature is checked over the raw
// bytes before any JSON decoding: Meta escapes non-ASCII, so re-encoded JSON never
// matches. A well-signed body it does not understand is acknowledged.
func (s *Server) wabaWebhook(c *gin.Context) {
	const src = event.SourceWABA
	if s.cfg.AppSecret == "" {
		s.reject(c, src, http.StatusServiceUnavailable, "WhatsApp webhook is not configured: set APP_SECRET")
		return
	}
	sig := c.GetHeader(waba.SignatureHeader)
	if sig == "" {
		s.reject(c, src, http.StatusUnauthorized, "missing "+waba.SignatureHeader+" header")
		return
	}
	body, ok := s.readBody(c, src)
	if !ok {
		return
	}
	if !waba.VerifySignature([]byte(s.cfg.AppSecret), body, sig) {
		s.reject(c, src, http.StatusUnauthorized, "bad "+waba.SignatureHeader+": it is not the HMAC-SHA256 of the body with APP_SECRET")
		return
	}
	events, err := waba.Parse(body)
	if err != nil {
		s.rejectInput(c, src, "bad JSON: "+err.Error())
		return
	}
	s.storeEvents(c, src, events)
}

// okdeskWebhook takes an Okdesk notification authenticated with HTTP Basic.
func (s *Server) okdeskWebhook(c *gin.Context) {
	const src = event.SourceOkdesk
	if s.cfg.OkdeskUser == "" || s.cfg.OkdeskPass == "" {
		s.reject(c, src, http.StatusServiceUnavailable, "Okdesk webhook is not configured: set OKDESK_USER and OKDESK_PASS")
		return
	}
	if auth := c.GetHeader("Authorization"); !okdesk.VerifyBasic(s.cfg.OkdeskUser, s.cfg.OkdeskPass, auth) {
		s.unauthorized(c, src, challengeOkdesk, auth == "", "Basic credentials")
		return
	}
	body, ok := s.readBody(c, src)
	if !ok {
		return
	}
	events, err := okdesk.Parse(body)
	if err != nil {
		var fe *okdesk.FieldError
		if errors.As(err, &fe) {
			s.rejectInput(c, src, fe.Error())
		} else {
			s.rejectInput(c, src, "bad JSON: "+err.Error())
		}
		return
	}
	s.storeEvents(c, src, events)
}

// onecWebhook takes a 1C notification (see connectors/onec) authenticated with a bearer token.
func (s *Server) onecWebhook(c *gin.Context) {
	const src = event.SourceOneC
	if s.cfg.OneCToken == "" {
		s.reject(c, src, http.StatusServiceUnavailable, "1C webhook is not configured: set ONEC_TOKEN")
		return
	}
	if auth := c.GetHeader("Authorization"); !onec.VerifyBearer(s.cfg.OneCToken, auth) {
		s.unauthorized(c, src, challengeOneC, auth == "", "bearer token")
		return
	}
	body, ok := s.readBody(c, src)
	if !ok {
		return
	}
	events, err := onec.Parse(body)
	if err != nil {
		// Both kinds of Parse error read as a ready answer: "bad JSON: …" or
		// `missing required field "status"`.
		s.rejectInput(c, src, err.Error())
		return
	}
	s.storeEvents(c, src, events)
}

// telegramWebhook takes a Telegram Update authenticated with the secret_token header.
func (s *Server) telegramWebhook(c *gin.Context) {
	const src = event.SourceTelegram
	if s.cfg.TelegramSecret == "" {
		s.reject(c, src, http.StatusServiceUnavailable, "Telegram webhook is not configured: set TELEGRAM_SECRET_TOKEN")
		return
	}
	got := c.GetHeader(telegram.SecretHeader)
	if got == "" {
		s.reject(c, src, http.StatusUnauthorized, "missing "+telegram.SecretHeader+" header")
		return
	}
	if !telegram.VerifySecret(s.cfg.TelegramSecret, got) {
		s.reject(c, src, http.StatusUnauthorized, "bad "+telegram.SecretHeader+" header")
		return
	}
	body, ok := s.readBody(c, src)
	if !ok {
		return
	}
	events, err := telegram.Parse(body)
	if err != nil {
		s.rejectInput(c, src, err.Error())
		return
	}
	s.storeEvents(c, src, events)
}

// readBody reads the whole body up to Config.MaxBody bytes: a declared or actual
// size above it answers 413 without reading further.
func (s *Server) readBody(c *gin.Context, source string) ([]byte, bool) {
	limit := s.cfg.MaxBody
	tooLarge := fmt.Sprintf("request body too large: the limit is %d bytes", limit)
	if c.Request.ContentLength > limit {
		s.reject(c, source, http.StatusRequestEntityTooLarge, tooLarge)
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var tl *http.MaxBytesError
		if errors.As(err, &tl) {
			s.reject(c, source, http.StatusRequestEntityTooLarge, tooLarge)
		} else {
			s.reject(c, source, http.StatusBadRequest, "read request body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// storeEvents appends events to the inbox and answers 200 only once they are committed;
// a failure answers 503 so that the sender retries (duplicates are then dropped by
// their dedupe keys).
func (s *Server) storeEvents(c *gin.Context, source string, events []event.Event) {
	res, ok := s.appendEvents(c, source, events)
	if !ok {
		fail(c, http.StatusServiceUnavailable, "could not store the events, retry later")
		return
	}
	dups := 0
	for _, r := range res {
		if r.Duplicate {
			dups++
		}
	}
	c.JSON(http.StatusOK, webhookAnswer{Received: len(res), Duplicates: dups})
}

// appendEvents stores events through the inbox and counts them by source, type and
// result. A failure is logged with the request's logger and reported as !ok.
func (s *Server) appendEvents(c *gin.Context, source string, events []event.Event) ([]store.AppendResult, bool) {
	if len(events) == 0 {
		return nil, true
	}
	log := s.logger(c)
	res, err := s.cfg.Inbox.Append(c.Request.Context(), events)
	if err == nil && len(res) != len(events) {
		err = fmt.Errorf("inbox returned %d results for %d events", len(res), len(events))
	}
	if err != nil {
		log.Error("store inbound events", "source", source, "events", len(events), "err", err)
		return nil, false
	}
	for i, r := range res {
		ev := events[i]
		result := resultStored
		if r.Duplicate {
			result = resultDuplicate
			s.cfg.Metrics.DedupeHits.WithLabelValues(source).Inc()
		}
		s.cfg.Metrics.EventsIn.WithLabelValues(source, ev.Type, result).Inc()
		log.Debug("inbound event", "source", source, "type", ev.Type, "event_id", r.Seq,
			"dedupe_key", ev.DedupeKey, "duplicate", r.Duplicate)
	}
	return res, true
}

// reject answers an error for a webhook request whose events are not stored, and
// counts it as rejected.
func (s *Server) reject(c *gin.Context, source string, status int, msg string) {
	s.cfg.Metrics.EventsIn.WithLabelValues(source, "", resultRejected).Inc()
	fail(c, status, msg)
}

// rejectInput answers 400 for a body the parser refused; see failInput.
func (s *Server) rejectInput(c *gin.Context, source, msg string) {
	s.cfg.Metrics.EventsIn.WithLabelValues(source, "", resultRejected).Inc()
	s.failInput(c, http.StatusBadRequest, msg)
}

// unauthorized rejects a webhook request with 401 and a challenge, saying whether
// the credentials were missing or wrong.
func (s *Server) unauthorized(c *gin.Context, source, challenge string, missing bool, what string) {
	s.cfg.Metrics.EventsIn.WithLabelValues(source, "", resultRejected).Inc()
	if missing {
		unauthorized(c, challenge, "missing "+what+" in the Authorization header")
	} else {
		unauthorized(c, challenge, "invalid "+what)
	}
}
