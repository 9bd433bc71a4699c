// Package event defines the normalized event that every inbound notification becomes
// and the correlation keys that route it to a dialog.
//
// It is the one type shared by connectors (which produce events), the engine (which
// consumes them) and the store (which keeps them); it depends on nothing else in fixit.
package event

import (
	"strings"
	"time"
)

// Sources of events.
const (
	SourceWABA     = "waba"
	SourceTelegram = "telegram"
	SourceOkdesk   = "okdesk"
	SourceOneC     = "onec"
	SourceTimer    = "timer"    // a state's timer fell due
	SourceAction   = "action"   // an outbound action's result
	SourceOperator = "operator" // a person's control of a dialog (admin API, console)
)

// Sources lists every source.
var Sources = []string{SourceWABA, SourceTelegram, SourceOkdesk, SourceOneC, SourceTimer, SourceAction, SourceOperator}

// Event types that fixit itself produces (connector-specific types are built by the connectors).
const (
	TypeWABAMessage      = "waba.message"
	TypeWABAStatus       = "waba.status"
	TypeTelegramMessage  = "telegram.message"
	TypeTelegramCallback = "telegram.callback"
	TypeOneCPayment      = "onec.payment"
	TypeTimer            = "timer"
	TypeActionDone       = "action.done"
	TypeActionFailed     = "action.failed"
)

// Event is one normalized inbound notification. Data holds the source's own fields
// (decoded JSON: map[string]any, []any, string, float64, bool, nil).
type Event struct {
	ID        string         `json:"id" expr:"id"`
	Source    string         `json:"source" expr:"source"`
	Type      string         `json:"type" expr:"type"`
	At        time.Time      `json:"at" expr:"at"`
	DedupeKey string         `json:"dedupe_key" expr:"dedupe_key"`
	Keys      []string       `json:"keys" expr:"keys"`
	Contact   Contact        `json:"contact" expr:"contact"`
	Text      string         `json:"text" expr:"text"`
	Data      map[string]any `json:"data" expr:"data"`
}

// Contact is the person behind an event, when there is one.
// Channel and ID address replies: ("waba", wa_id) or ("telegram", chat id).
type Contact struct {
	Channel string `json:"channel,omitempty" expr:"channel"`
	ID      string `json:"id,omitempty" expr:"id"`
	Name    string `json:"name,omitempty" expr:"name"`
	Phone   string `json:"phone,omitempty" expr:"phone"`
}

// Key builders for the correlation keys.

// WABAKey is the key of a WhatsApp contact in its conversation with one business
// number (the phone_number_id the webhook's metadata names): a customer who writes
// to two numbers of the account has two conversations, so two keys.
func WABAKey(phoneNumberID, waID string) string { return "waba:" + phoneNumberID + ":" + waID }

// FieldPhoneNumberID is the field of a WhatsApp event's Data that names the
// business number (its phone_number_id) the notification is about.
const FieldPhoneNumberID = "phone_number_id"

// BusinessNumber returns the business number a WhatsApp event arrived at (its
// data.phone_number_id), or "" for events of other sources.
func BusinessNumber(ev *Event) string {
	if ev.Source != SourceWABA {
		return ""
	}
	return text(ev.Data[FieldPhoneNumberID])
}

// TelegramKey is the key of a Telegram chat.
func TelegramKey(chatID string) string { return "telegram:" + chatID }

// OkdeskIssueKey is the key of an Okdesk issue.
func OkdeskIssueKey(id string) string { return "okdesk:issue:" + id }

// OneCInvoiceKey is the key of a 1C invoice.
func OneCInvoiceKey(id string) string { return "onec:invoice:" + id }

// PhoneKey is the key of a phone number; it returns "" when raw holds no usable number.
func PhoneKey(raw string) string {
	p := NormalizePhone(raw)
	if p == "" {
		return ""
	}
	return "phone:" + p
}

// NormalizePhone reduces a phone number to its E.164 digits without the plus sign:
// "+7 (916) 123-45-67" → "79161234567", "0049 30 1234567" → "49301234567".
//
// A number written for people in the Russian national format, without "+" and with
// spaces, dashes, dots or parentheses, gets country code 7: "8 916 123-45-67" and
// "(916) 123-45-67" → "79161234567". A bare digit string is taken as already
// international and kept as it is, so NormalizePhone(NormalizePhone(x)) ==
// NormalizePhone(x) and a WhatsApp wa_id such as "84912345678" (Vietnam) is never
// rewritten. Fewer than 7 or more than 15 digits is not a phone number: "".
func NormalizePhone(raw string) string {
	raw = strings.TrimSpace(raw)
	var b strings.Builder
	b.Grow(len(raw))
	formatted := false
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.' || r == '\u00a0':
			formatted = true
		}
	}
	d := b.String()
	switch {
	case strings.HasPrefix(raw, "+"):
	case strings.HasPrefix(raw, "00"):
		d = d[2:]
	case formatted && len(d) == 11 && d[0] == '8':
		d = "7" + d[1:] // Russian trunk prefix
	case formatted && len(d) == 10 && d[0] == '9':
		d = "7" + d // Russian mobile without country code
	}
	if len(d) < 7 || len(d) > 15 {
		return ""
	}
	return d
}

// AddKey appends k to keys unless it is empty or already present.
func AddKey(keys []string, k string) []string {
	if k == "" {
		return keys
	}
	for _, x := range keys {
		if x == k {
			return keys
		}
	}
	return append(keys, k)
}
