package waba

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"

	"github.com/fixit-exchange/fixit/engine/event"
)

// TypeError is the event type of an out-of-band error that Meta reports in
// entry[].changes[].value.errors, not tied to one message.
const TypeError = "waba.error"

// Message kinds, the "kind" field of a waba.message event's Data.
const (
	KindText           = "text"
	KindButtonReply    = "button_reply"    // tap on an interactive reply button
	KindListReply      = "list_reply"      // choice of an interactive list row
	KindTemplateButton = "template_button" // tap on a template quick-reply button
	KindImage          = "image"
	KindAudio          = "audio"
	KindVoice          = "voice" // audio recorded as a voice note (audio.voice = true)
	KindVideo          = "video"
	KindDocument       = "document"
	KindSticker        = "sticker"
	KindLocation       = "location"
	KindContacts       = "contacts"
	KindReaction       = "reaction"
	KindUnsupported    = "unsupported" // Meta could not render it (see Data["errors"])
	KindOrder          = "order"
	KindSystem         = "system"
	KindOther          = "other" // a type this package does not normalize; Data keeps it raw
)

// StatusRank orders delivery statuses so that a status only ever moves forward:
// sent (1) < delivered (2) < read (3) < failed (4, final). Unknown statuses rank 0.
// Meta does not deliver statuses in order, so a consumer keeps the higher rank.
func StatusRank(status string) int {
	switch status {
	case "sent":
		return 1
	case "delivered":
		return 2
	case "read":
		return 3
	case "failed":
		return 4
	}
	return 0
}

// StatusDedupeKey is the dedupe key of the status event of message wamid: one a
// status, however often Meta delivers it.
func StatusDedupeKey(wamid, status string) string { return "waba:" + wamid + ":" + status }

// Parse normalizes a Cloud API webhook body into events, iterating every entry,
// change, message, status and value-level error. Only a body that is not JSON is an
// error: JSON it does not understand yields no events (or events of kind "other"),
// so that a well-signed delivery is always acknowledged. Event.ID is left for the
// store to assign; Event.At is zero when the payload carries no usable timestamp.
func Parse(body []byte) ([]event.Event, error) {
	var root any
	if err := json.Unmarshal(body, &root); err != nil {
		return nil, fmt.Errorf("decode waba webhook body: %w", err)
	}
	events := []event.Event{}
	for _, e := range list(obj(root)["entry"]) {
		entry := obj(e)
		wabaID := str(entry["id"])
		for _, c := range list(entry["changes"]) {
			if v := obj(obj(c)["value"]); v != nil {
				events = append(events, parseValue(wabaID, v)...)
			}
		}
	}
	return events, nil
}

// change holds what every event of one entry[].changes[].value shares.
type change struct {
	wabaID, phoneNumberID, displayPhone string
	names                               map[string]string // wa_id (or BSUID) → profile name
}

func parseValue(wabaID string, v map[string]any) []event.Event {
	meta := obj(v["metadata"])
	c := change{
		wabaID:        wabaID,
		phoneNumberID: str(meta["phone_number_id"]),
		displayPhone:  str(meta["display_phone_number"]),
		names:         map[string]string{},
	}
	for _, x := range list(v["contacts"]) {
		ct := obj(x)
		name := str(obj(ct["profile"])["name"])
		for _, id := range []string{str(ct["wa_id"]), str(ct["user_id"])} {
			if id != "" && name != "" {
				c.names[id] = name
			}
		}
	}

	// Value-level errors are keyed before messages and statuses get their
	// normalized fields, so the keys depend on the delivered content only.
	var errEvents []event.Event
	for _, x := range list(v["errors"]) {
		if e := obj(x); e != nil {
			errEvents = append(errEvents, c.valueError(v, e))
		}
	}
	var out []event.Event
	for _, x := range list(v["messages"]) {
		if m := obj(x); m != nil {
			out = append(out, c.message(m))
		}
	}
	for _, x := range list(v["statuses"]) {
		if s := obj(x); s != nil {
			out = append(out, c.status(s))
		}
	}
	return append(out, errEvents...)
}

// message normalizes one value.messages[] object; m becomes the event's Data.
func (c change) message(m map[string]any) event.Event {
	from, wamid := str(m["from"]), str(m["id"])
	dedupe := "waba:" + wamid
	if wamid == "" {
		dedupe = "waba:message:" + hashKey(c.wabaID, m)
	}
	kind, text := normalizeMessage(m)
	m["kind"] = kind
	c.addMeta(m)
	setNonEmpty(m, "context_id", str(obj(m["context"])["id"]))
	addFirstError(m, m["errors"])

	ev := c.event(event.TypeWABAMessage, m, dedupe, from)
	ev.Text = text
	return ev
}

// normalizeMessage adds the kind-specific normalized fields to m and returns the
// kind and the human text of the message.
func normalizeMessage(m map[string]any) (kind, text string) {
	typ := str(m["type"])
	body := obj(m[typ])
	switch typ {
	case "text":
		return KindText, str(body["body"])
	case "interactive":
		kind = str(body["type"])
		reply := obj(body[kind])
		if reply == nil || (kind != KindButtonReply && kind != KindListReply) {
			return KindOther, ""
		}
		setNonEmpty(m, "reply_id", str(reply["id"]))
		setNonEmpty(m, "reply_title", str(reply["title"]))
		setNonEmpty(m, "reply_description", str(reply["description"]))
		return kind, str(reply["title"])
	case "button":
		setNonEmpty(m, "reply_id", str(body["payload"]))
		setNonEmpty(m, "reply_title", str(body["text"]))
		return KindTemplateButton, str(body["text"])
	case "image", "audio", "video", "document", "sticker":
		kind = typ
		if typ == "audio" && body["voice"] == true {
			kind = KindVoice
		}
		caption := str(body["caption"])
		setNonEmpty(m, "media_id", str(body["id"]))
		setNonEmpty(m, "mime_type", str(body["mime_type"]))
		setNonEmpty(m, "caption", caption)
		setNonEmpty(m, "filename", str(body["filename"]))
		if id := str(body["id"]); id != "" {
			// fixit downloads the file before the flow sees the message.
			item := map[string]any{"ref": id, "kind": kind}
			setNonEmpty(item, "name", str(body["filename"]))
			setNonEmpty(item, "mime", str(body["mime_type"]))
			setNonEmpty(item, "sha256", str(body["sha256"]))
			m[event.FieldFetch] = map[string]any{"source": event.SourceWABA, "items": []any{item}}
		}
		return kind, caption
	case "location":
		return KindLocation, joinNonEmpty(", ", str(body["name"]), str(body["address"]))
	case "contacts":
		var names []string
		for _, x := range list(m["contacts"]) {
			n := obj(obj(x)["name"])
			names = append(names, firstNonEmpty(str(n["formatted_name"]),
				joinNonEmpty(" ", str(n["first_name"]), str(n["last_name"]))))
		}
		return KindContacts, joinNonEmpty(", ", names...)
	case "reaction":
		return KindReaction, str(body["emoji"])
	case "unsupported", "unknown":
		return KindUnsupported, ""
	case "order":
		return KindOrder, str(body["text"])
	case "system":
		return KindSystem, str(body["body"])
	}
	return KindOther, ""
}

// status normalizes one value.statuses[] object; s becomes the event's Data.
func (c change) status(s map[string]any) event.Event {
	wamid, st, recipient := str(s["id"]), str(s["status"]), str(s["recipient_id"])
	dedupe := StatusDedupeKey(wamid, st)
	if wamid == "" {
		dedupe = "waba:status:" + hashKey(c.wabaID, s)
	}
	s["status"] = st
	s["message_id"] = wamid
	s["recipient_id"] = recipient
	c.addMeta(s)
	addFirstError(s, s["errors"])
	return c.event(event.TypeWABAStatus, s, dedupe, recipient)
}

// valueError normalizes one value.errors[] object, which belongs to the whole value
// (no wamid). Its dedupe key hashes the entry, the error and the ids and timestamps
// of the value's messages and statuses: a retried identical delivery gets the same
// key, while the same error about other messages gets another.
func (c change) valueError(v, e map[string]any) event.Event {
	var anchors, people []string
	var latest string
	for _, x := range list(v["messages"]) {
		m := obj(x)
		anchors = append(anchors, str(m["id"])+"@"+str(m["timestamp"]))
		people = append(people, str(m["from"]))
		latest = maxTimestamp(latest, str(m["timestamp"]))
	}
	for _, x := range list(v["statuses"]) {
		s := obj(x)
		anchors = append(anchors, str(s["id"])+":"+str(s["status"])+"@"+str(s["timestamp"]))
		people = append(people, str(s["recipient_id"]))
		latest = maxTimestamp(latest, str(s["timestamp"]))
	}
	dedupe := "waba:error:" + hashKey(c.wabaID, c.phoneNumberID, e, anchors)

	c.addMeta(e)
	addFirstError(e, []any{e})
	ev := event.Event{
		Source:    event.SourceWABA,
		Type:      TypeError,
		At:        unixTime(latest),
		DedupeKey: dedupe,
		Keys:      []string{},
		Data:      e,
	}
	var distinct []string
	for _, p := range people {
		distinct = event.AddKey(distinct, p)
		ev.Keys = addContactKeys(ev.Keys, c.phoneNumberID, p)
	}
	if len(distinct) == 1 {
		ev.Contact = c.contact(distinct[0])
	}
	return ev
}

// event builds the common part of a message or status event about contact waID.
func (c change) event(typ string, data map[string]any, dedupe, waID string) event.Event {
	return event.Event{
		Source:    event.SourceWABA,
		Type:      typ,
		At:        unixTime(str(data["timestamp"])),
		DedupeKey: dedupe,
		Keys:      addContactKeys([]string{}, c.phoneNumberID, waID),
		Contact:   c.contact(waID),
		Data:      data,
	}
}

func (c change) contact(waID string) event.Contact {
	if waID == "" {
		return event.Contact{}
	}
	return event.Contact{Channel: event.SourceWABA, ID: waID, Name: c.names[waID], Phone: phoneOf(waID)}
}

func (c change) addMeta(data map[string]any) {
	setNonEmpty(data, "phone_number_id", c.phoneNumberID)
	setNonEmpty(data, "display_phone_number", c.displayPhone)
	setNonEmpty(data, "waba_id", c.wabaID)
}

// addContactKeys adds the waba: key of a wa_id's conversation with the business
// number phoneNumberID, and its phone: key. Without a business number (metadata
// missing) there is no conversation to key, only the phone.
func addContactKeys(keys []string, phoneNumberID, waID string) []string {
	if waID == "" {
		return keys
	}
	if phoneNumberID != "" {
		keys = event.AddKey(keys, event.WABAKey(phoneNumberID, waID))
	}
	if p := phoneOf(waID); p != "" {
		keys = event.AddKey(keys, "phone:"+p)
	}
	return keys
}

// phoneOf returns the E.164 digits of a wa_id. A wa_id is already international, so
// the national-prefix guesses of event.NormalizePhone must not apply; a business-scoped
// user id ("US.1349…") is not a phone number at all.
func phoneOf(waID string) string {
	for _, r := range waID {
		if r < '0' || r > '9' {
			return ""
		}
	}
	return event.NormalizePhone("+" + waID)
}

// addFirstError copies the code, title and details of the first error of errs
// (a decoded errors[] array) into data.
func addFirstError(data map[string]any, errs any) {
	l := list(errs)
	if len(l) == 0 {
		return
	}
	e := obj(l[0])
	if code, err := strconv.ParseFloat(str(e["code"]), 64); err == nil {
		data["error_code"] = code
	}
	setNonEmpty(data, "error_title", firstNonEmpty(str(e["title"]), str(e["message"])))
	setNonEmpty(data, "error_details", str(obj(e["error_data"])["details"]))
}

// hashKey is a stable digest of decoded JSON values (encoding/json sorts map keys).
func hashKey(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		b, _ := json.Marshal(p) // decoded JSON always re-encodes
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// maxUnix is 9999-12-31T23:59:59Z, the last instant time.Time encodes as JSON.
const maxUnix = 253402300799

func unixTime(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > maxUnix {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

func maxTimestamp(a, b string) string {
	if unixTime(b).After(unixTime(a)) {
		return b
	}
	return a
}

// obj, list and str read decoded JSON leniently: a value of another type reads as
// empty, and a number reads as its decimal string (ids are sometimes numbers).
var obj, list = connectors.Object, connectors.List

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return ""
}

func setNonEmpty(m map[string]any, key, val string) {
	if val != "" {
		m[key] = val
	}
}

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
