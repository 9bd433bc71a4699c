package telegram

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"

	"github.com/fixit-exchange/fixit/connectors"
)

// Errors of Parse. The webhook handler tells a malformed body from an accepted one
// with errors.Is.
var (
	// ErrBadJSON is wrapped by Parse when the body is not one JSON object.
	ErrBadJSON = errors.New("bad JSON")
	// ErrNoUpdateID is wrapped by Parse when the object has no integer update_id.
	ErrNoUpdateID = errors.New("missing or non-integer update_id")
)

// Kinds of message, the normalized Data["kind"].
const (
	KindText     = "text"
	KindPhoto    = "photo"
	KindDocument = "document"
	KindVoice    = "voice"
	KindAudio    = "audio"
	KindVideo    = "video"
	KindSticker  = "sticker"
	KindLocation = "location"
	KindContact  = "contact"
	KindCallback = "callback"
	KindOther    = "other"
)

// messageKinds is the order in which a message's content fields decide its kind:
// the first one present wins (an animation also carries "document"; a venue also
// carries "location").
var messageKinds = []string{KindText, KindPhoto, KindDocument, KindVoice, KindAudio, KindVideo, KindSticker, KindLocation, KindContact}

// messageFields are the update fields whose value is a Message. Only message and
// edited_message become "telegram.message"; the others keep their own type but are
// normalized the same way.
var messageFields = map[string]bool{
	"message": true, "edited_message": true,
	"channel_post": true, "edited_channel_post": true,
	"business_message": true, "edited_business_message": true,
}

// maxUnix is 9999-12-31T23:59:59Z: later dates cannot be encoded as RFC 3339, so they
// are treated as absent.
const maxUnix = 253402300799

// Parse normalizes one webhook body, a Telegram Update, into events.
//
// It fails only when the body is not a JSON object (ErrBadJSON) or has no integer
// update_id (ErrNoUpdateID). An update that carries nothing besides update_id gives
// no event. Telegram sends at most one update kind per Update; should a body carry
// several, message, edited_message and callback_query are preferred, then the
// remaining field names in sorted order, and one event is produced.
//
// The event:
//   - Type: "telegram.message" for message and edited_message, "telegram.callback"
//     for callback_query, "telegram.<field>" for any other kind.
//   - DedupeKey: "telegram:<update_id>".
//   - At: the message date, or edit_date for an edit; for a callback the date of the
//     message that carried the button (the callback itself has no time, and an
//     inaccessible message has date 0); for other kinds their "date" field. Zero when
//     there is none.
//   - Keys: "telegram:<chat id>" when the chat is known, and "phone:<digits>" when a
//     message shares the sender's own contact (contact.user_id absent or equal to
//     from.id: a third party's contact card says nothing about the sender).
//   - Contact: Channel "telegram", ID the chat id (the reply address), Name the
//     sender's first and last name (the chat's for a private chat without from),
//     Phone as above.
//   - Text: the message text or caption; the callback data for a callback.
//   - Data: the update's inner object (numbers as float64) plus "update_id",
//     "chat_id", "message_id" (decimal strings, "" when unknown) and "kind"; messages
//     add "edited" (bool); callbacks add "callback_id" and "data", and their
//     "message_id" is that of the message the button was on. A non-object inner
//     value is kept under "value".
func Parse(body []byte) ([]event.Event, error) {
	upd, err := connectors.DecodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadJSON, err)
	}
	updateID, ok := integer(upd, "update_id")
	if !ok {
		return nil, ErrNoUpdateID
	}
	field := updateKind(upd)
	if field == "" {
		return nil, nil
	}
	return []event.Event{normalize(updateID, field, upd[field])}, nil
}

// updateKind picks the field of upd that holds the update, "" when there is none.
func updateKind(upd map[string]any) string {
	for _, f := range []string{"message", "edited_message", "callback_query"} {
		if upd[f] != nil {
			return f
		}
	}
	var rest []string
	for f, v := range upd {
		if f != "update_id" && v != nil {
			rest = append(rest, f)
		}
	}
	if len(rest) == 0 {
		return ""
	}
	slices.Sort(rest)
	return rest[0]
}

// normalize builds the event of one update whose kind is field and whose value is v.
func normalize(updateID, field string, v any) event.Event {
	ev := event.Event{
		Source:    event.SourceTelegram,
		Type:      "telegram." + field,
		DedupeKey: "telegram:" + updateID,
		Keys:      []string{},
	}
	inner, isObject := v.(map[string]any)
	if isObject {
		ev.Data = connectors.PlainNumbers(inner).(map[string]any)
	} else {
		inner = map[string]any{}
		ev.Data = map[string]any{"value": connectors.PlainNumbers(v)}
	}

	var chat, from map[string]any
	var messageID, rawPhone string
	kind := KindOther
	switch {
	case messageFields[field]:
		if field == "message" || field == "edited_message" {
			ev.Type = event.TypeTelegramMessage
		}
		edited := strings.HasPrefix(field, "edited_")
		chat, from = object(inner, "chat"), object(inner, "from")
		messageID, _ = integer(inner, "message_id")
		kind = messageKind(inner)
		ev.Text = str(inner, "text")
		if ev.Text == "" {
			ev.Text = str(inner, "caption")
		}
		ev.At = unixTime(inner, "date")
		if t := unixTime(inner, "edit_date"); edited && !t.IsZero() {
			ev.At = t
		}
		ev.Data["edited"] = edited
		rawPhone = sharedPhone(inner, from)
		if field == "message" {
			if f := fetchOf(kind, inner); f != nil {
				ev.Data[event.FieldFetch] = f // downloaded before the flow sees the message
			}
		}
	case field == "callback_query":
		ev.Type = event.TypeTelegramCallback
		msg := object(inner, "message")
		chat, from = object(msg, "chat"), object(inner, "from")
		messageID, _ = integer(msg, "message_id")
		kind = KindCallback
		ev.Text = str(inner, "data")
		ev.At = unixTime(msg, "date")
		ev.Data["callback_id"] = str(inner, "id")
		ev.Data["data"] = ev.Text
	default:
		chat, from = object(inner, "chat"), object(inner, "from")
		if from == nil {
			from = object(inner, "user") // poll_answer, message_reaction
		}
		messageID, _ = integer(inner, "message_id")
		ev.At = unixTime(inner, "date")
	}

	chatID, _ := integer(chat, "id")
	if chatID != "" {
		ev.Contact.Channel = event.SourceTelegram
		ev.Contact.ID = chatID
		ev.Keys = event.AddKey(ev.Keys, event.TelegramKey(chatID))
	}
	ev.Contact.Name = fullName(from)
	if ev.Contact.Name == "" {
		ev.Contact.Name = fullName(chat)
	}
	// PhoneKey normalizes its argument, and normalizing twice is not always a no-op
	// ("+9001234567" → "9001234567" → "79001234567"): give it the raw number.
	ev.Contact.Phone = event.NormalizePhone(rawPhone)
	ev.Keys = event.AddKey(ev.Keys, event.PhoneKey(rawPhone))

	ev.Data["update_id"] = updateID
	ev.Data["chat_id"] = chatID
	ev.Data["message_id"] = messageID
	ev.Data["kind"] = kind
	return ev
}

// fetchOf is the file of a photo (its largest size) or document message to
// download (getFile), as event.FieldFetch; nil for other messages.
func fetchOf(kind string, msg map[string]any) map[string]any {
	var file map[string]any
	switch kind {
	case KindPhoto:
		sizes, _ := msg["photo"].([]any)
		if len(sizes) == 0 {
			return nil
		}
		file, _ = sizes[len(sizes)-1].(map[string]any) // Telegram lists the sizes smallest first
	case KindDocument:
		file = object(msg, "document")
	}
	id := str(file, "file_id")
	if id == "" {
		return nil
	}
	item := map[string]any{"ref": id, "kind": kind}
	if n, ok := file["file_size"].(json.Number); ok {
		if v, err := n.Int64(); err == nil && v > 0 {
			item["size"] = v
		}
	}
	for from, to := range map[string]string{"file_name": "name", "mime_type": "mime"} {
		if v := str(file, from); v != "" {
			item[to] = v
		}
	}
	return map[string]any{"source": event.SourceTelegram, "items": []any{item}}
}

// messageKind classifies a Message by its content field.
func messageKind(msg map[string]any) string {
	for _, k := range messageKinds {
		if msg[k] != nil {
			return k
		}
	}
	return KindOther
}

// sharedPhone returns the phone number, as sent, of a contact the sender shared
// about themselves; "" otherwise.
func sharedPhone(msg, from map[string]any) string {
	c := object(msg, "contact")
	if c == nil {
		return ""
	}
	if owner, ok := integer(c, "user_id"); ok {
		if sender, ok := integer(from, "id"); !ok || sender != owner {
			return ""
		}
	}
	return str(c, "phone_number")
}

// unixTime reads m[key] as a positive unix time in seconds; zero when absent or out
// of range.
func unixTime(m map[string]any, key string) time.Time {
	sec, ok := int64Field(m, key)
	if !ok || sec <= 0 || sec > maxUnix {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}
