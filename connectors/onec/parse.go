package onec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"

	"github.com/fixit-exchange/fixit/connectors"
)

// ErrBadJSON is wrapped by Parse when the body is not one JSON object. The error's
// text reads "bad JSON: <why>", ready for a 400 answer.
var ErrBadJSON = errors.New("bad JSON")

// FieldError reports a required field that is missing or a known field whose value
// is unusable. Its text, e.g. `missing required field "status"`, is meant for the
// 400 answer to 1C.
type FieldError struct {
	Field  string // JSON name; nested fields are dotted, e.g. "invoice.id"
	Reason string // why the value is unusable; empty when the field is missing
}

func (e *FieldError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("missing required field %q", e.Field)
	}
	return fmt.Sprintf("invalid field %q: %s", e.Field, e.Reason)
}

// EventPayment is the event name of a payment notification.
const EventPayment = "payment"

// Payment statuses, the values of "status" in a payment notification.
const (
	StatusPaid          = "paid"
	StatusPartiallyPaid = "partially_paid"
	StatusUnpaid        = "unpaid"
	StatusCancelled     = "cancelled"
)

// paymentStatuses is read-only; PaymentStatuses hands out copies.
var paymentStatuses = []string{StatusPaid, StatusPartiallyPaid, StatusUnpaid, StatusCancelled}

// PaymentStatuses lists the statuses a payment notification may carry.
func PaymentStatuses() []string { return slices.Clone(paymentStatuses) }

const maxEventName = 100

// Parse validates a 1C notification and normalizes it into one event.
//
// Errors: a body that is not one JSON object wraps ErrBadJSON; a missing or empty
// id, event or status, an event name with characters other than ASCII letters,
// digits, '_', '.' and '-', a payment status outside PaymentStatuses(), and a known
// field of the wrong type (invoice not an object; invoice.id, invoice.number,
// okdesk_issue_id, phone not a string or integer; amount not a number) are
// *FieldError. Type checks are strict because a silently dropped correlation field
// would leave a payment unrouted; a phone that is not a phone number is only
// ignored, since it is data, not the integration, that is wrong.
//
// The event:
//   - Type "onec.<event>", Source "onec", DedupeKey "onec:<id>".
//   - At: paid_at when it is an RFC 3339 time (converted to UTC); zero otherwise,
//     including 1C's zone-less "2006-01-02T15:04:05" (the raw value stays in Data).
//   - Keys: "onec:invoice:<invoice.id>", "okdesk:issue:<okdesk_issue_id>",
//     "phone:<digits>", each when present.
//   - Contact: Phone only (1C addresses nobody).
//   - Text: empty.
//   - Data: the whole object, unknown fields included (numbers as float64), with "id"
//     as the normalized string of the dedupe key, plus the normalized strings "invoice_id", "invoice_number", "okdesk_issue_id" and
//     "phone" (E.164 digits; "" when absent or unusable, the original then in
//     "phone_raw"), and "amount" as a number when given.
func Parse(body []byte) ([]event.Event, error) {
	obj, err := connectors.DecodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	id, err := idField(obj, "id", "id", true)
	if err != nil {
		return nil, err
	}
	name, err := requiredString(obj, "event")
	if err != nil {
		return nil, err
	}
	if err := checkEventName(name); err != nil {
		return nil, err
	}
	status, err := requiredString(obj, "status")
	if err != nil {
		return nil, err
	}
	if name == EventPayment && !slices.Contains(paymentStatuses, status) {
		return nil, &FieldError{Field: "status", Reason: fmt.Sprintf("%q is not one of %s", status, strings.Join(paymentStatuses, ", "))}
	}

	var invoiceID, invoiceNumber string
	switch inv := obj["invoice"].(type) {
	case nil:
	case map[string]any:
		if invoiceID, err = idField(inv, "id", "invoice.id", false); err != nil {
			return nil, err
		}
		if invoiceNumber, err = idField(inv, "number", "invoice.number", false); err != nil {
			return nil, err
		}
	default:
		return nil, &FieldError{Field: "invoice", Reason: "must be an object {id, number, date}"}
	}
	issueID, err := idField(obj, "okdesk_issue_id", "okdesk_issue_id", false)
	if err != nil {
		return nil, err
	}
	if _, isNumber := obj["okdesk_issue_id"].(json.Number); isNumber && (strings.HasPrefix(issueID, "-") || issueID == "0") {
		return nil, &FieldError{Field: "okdesk_issue_id", Reason: "must be a positive integer or a string"}
	}
	rawPhone, err := idField(obj, "phone", "phone", false)
	if err != nil {
		return nil, err
	}
	amount, hasAmount, err := amountField(obj)
	if err != nil {
		return nil, err
	}

	ev := event.Event{
		Source:    event.SourceOneC,
		Type:      "onec." + name,
		DedupeKey: "onec:" + id,
		Keys:      []string{},
		At:        rfc3339(obj["paid_at"]),
		Data:      connectors.PlainNumbers(obj).(map[string]any),
	}
	phone := event.NormalizePhone(rawPhone)
	ev.Contact.Phone = phone
	if invoiceID != "" {
		ev.Keys = event.AddKey(ev.Keys, event.OneCInvoiceKey(invoiceID))
	}
	if issueID != "" {
		ev.Keys = event.AddKey(ev.Keys, event.OkdeskIssueKey(issueID))
	}
	// PhoneKey normalizes its argument, and normalizing twice is not always a no-op
	// ("+9001234567" → "9001234567" → "79001234567"): give it the raw number.
	ev.Keys = event.AddKey(ev.Keys, event.PhoneKey(rawPhone))

	ev.Data["id"] = id
	ev.Data["invoice_id"] = invoiceID
	ev.Data["invoice_number"] = invoiceNumber
	ev.Data["okdesk_issue_id"] = issueID
	if obj["phone"] != nil {
		ev.Data["phone_raw"] = ev.Data["phone"]
	}
	ev.Data["phone"] = phone
	if hasAmount {
		ev.Data["amount"] = amount
	}
	return []event.Event{ev}, nil
}

// requiredString reads a required, non-blank string field.
func requiredString(obj map[string]any, key string) (string, error) {
	v, ok := obj[key]
	if !ok || v == nil {
		return "", &FieldError{Field: key}
	}
	s, ok := v.(string)
	if !ok {
		return "", &FieldError{Field: key, Reason: "must be a string"}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", &FieldError{Field: key}
	}
	return s, nil
}

// idField reads an identifier that 1C may send as a string or a number. Numbers
// must be integral and are rendered without a fraction or exponent (1542, never
// 1542.0 or 1.542e+03). Absent, null and blank give "" unless required.
func idField(obj map[string]any, key, name string, required bool) (string, error) {
	var s string
	switch v := obj[key].(type) {
	case nil:
	case string:
		s = strings.TrimSpace(v)
	case json.Number:
		var ok bool
		if s, ok = integerText(v); !ok {
			return "", &FieldError{Field: name, Reason: fmt.Sprintf("number %s is not an integer", v)}
		}
	default:
		return "", &FieldError{Field: name, Reason: "must be a string or an integer"}
	}
	if s == "" && required {
		return "", &FieldError{Field: name}
	}
	return s, nil
}

// integerText renders an integral JSON number as decimal digits.
func integerText(n json.Number) (string, bool) {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return strconv.FormatInt(i, 10), true
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) >= 1<<63 {
		return "", false
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// amountField reads "amount": a JSON number, or a decimal string with a point.
func amountField(obj map[string]any) (float64, bool, error) {
	var text string
	switch v := obj["amount"].(type) {
	case nil:
		return 0, false, nil
	case json.Number:
		text = string(v)
	case string:
		text = strings.TrimSpace(v)
		if text == "" {
			return 0, false, nil
		}
	default:
		return 0, false, &FieldError{Field: "amount", Reason: "must be a number"}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, &FieldError{Field: "amount", Reason: fmt.Sprintf("%q is not a finite number", text)}
	}
	return f, true, nil
}

// checkEventName keeps event types to names a flow can write after "on:".
func checkEventName(name string) error {
	if len(name) > maxEventName {
		return &FieldError{Field: "event", Reason: fmt.Sprintf("longer than %d characters", maxEventName)}
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return &FieldError{Field: "event", Reason: fmt.Sprintf("%q may contain only ASCII letters, digits, '_', '.' and '-'", name)}
		}
	}
	return nil
}

// rfc3339 parses an RFC 3339 time string into UTC; zero for anything else.
func rfc3339(v any) time.Time {
	s, ok := v.(string)
	if !ok {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}
	}
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 { // an offset can push 0000 or 9999 out of RFC 3339's range
		return time.Time{}
	}
	return t
}
