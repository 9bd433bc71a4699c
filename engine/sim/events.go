package sim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors/okdesk"
	"github.com/fixit-exchange/fixit/connectors/onec"
	"github.com/fixit-exchange/fixit/connectors/telegram"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine/event"
)

// Builder writes each inbound notification as its system sends it (a WhatsApp
// Cloud API webhook, a Telegram update, an Okdesk webhook, fixit's 1C notification)
// and turns it into an event with that connector's own parser, so a scenario's
// events are exactly the server's. It dates them by its clock and gives them fresh
// ids; it does not deliver them: pass them to a Driver.
type Builder struct {
	now   func() time.Time
	n     int       // notifications built so far (unique ids and dedupe keys)
	files *contents // the files the notifications refer to (Content)
}

// NewBuilder returns a Builder dating notifications by now.
func NewBuilder(now func() time.Time) *Builder { return &Builder{now: now, files: &contents{}} }

// Delivery is one inbound notification: the body its system posts to fixit's
// webhook, and the event the connector's parser made of it. A raw event (Webhook
// "") has no body; the admin API's POST /api/v1/events takes it as it is.
type Delivery struct {
	Webhook string // "waba", "telegram", "okdesk", "onec"; "" for a raw event
	Body    []byte
	Event   event.Event
}

// WhatsAppContact is a WhatsApp customer.
type WhatsAppContact struct {
	Phone string // any format; the wa_id is its E.164 digits
	Name  string
	// To is the business number (phone_number_id) the customer writes to;
	// SimPhoneNumberID when empty.
	To string
}

// BusinessNumber is the business number the contact writes to.
func (c WhatsAppContact) BusinessNumber() string {
	if c.To != "" {
		return c.To
	}
	return SimPhoneNumberID
}

// WAID is the contact's wa_id.
func (c WhatsAppContact) WAID() string {
	if p := event.NormalizePhone(c.Phone); p != "" {
		return p
	}
	return strings.TrimPrefix(strings.TrimSpace(c.Phone), "+")
}

// TelegramChat is a Telegram customer (a private chat).
type TelegramChat struct {
	ChatID string
	Name   string
}

// MediaKinds are the kinds of WhatsApp messages that carry a file.
var MediaKinds = []string{"image", "document", "video", "audio", "voice", "sticker"}

// The world's WhatsApp business account and its first number.
const (
	simWABAID = "100000000000001"
	// SimPhoneNumberID is the business number customers write to unless a step
	// names another.
	SimPhoneNumberID = "200000000000001"
	simDisplayPhone  = "74950000000"
)

// parsed runs a connector's parser over a body the builder wrote; it makes one event.
func parsed(webhook string, body any, parse func([]byte) ([]event.Event, error)) (Delivery, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return Delivery{}, err
	}
	evs, err := parse(b)
	if err != nil {
		return Delivery{}, err
	}
	if len(evs) != 1 {
		return Delivery{}, fmt.Errorf("the notification made %d events, want 1", len(evs))
	}
	return Delivery{Webhook: webhook, Body: b, Event: evs[0]}, nil
}

// waMessage is a webhook delivering one message of type typ from c; body is the
// message's type-specific object.
func (b *Builder) waMessage(c WhatsAppContact, typ string, body map[string]any) (Delivery, error) {
	b.n++
	msg := map[string]any{"from": c.WAID(), "id": "wamid.sim.in." + strconv.Itoa(b.n),
		"timestamp": strconv.FormatInt(b.now().Unix(), 10), "type": typ, typ: body}
	value := map[string]any{"messaging_product": "whatsapp", "metadata": waMetadata(c.BusinessNumber()),
		"contacts": []any{map[string]any{"profile": map[string]any{"name": c.Name}, "wa_id": c.WAID()}},
		"messages": []any{msg}}
	return parsed("waba", waWebhook(value), waba.Parse)
}

// waMetadata is a webhook value's metadata for the business number number.
func waMetadata(number string) map[string]any {
	display := simDisplayPhone
	if number != SimPhoneNumberID {
		display = "7495" + number[max(len(number)-7, 0):]
	}
	return map[string]any{"display_phone_number": display, "phone_number_id": number}
}

// waWebhook is the Cloud API webhook body carrying one change value.
func waWebhook(value map[string]any) map[string]any {
	return map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": simWABAID, "changes": []any{map[string]any{"field": "messages", "value": value}}}}}
}

// Receipt is a WhatsApp delivery status of a message sent to a customer.
type Receipt struct {
	MessageID string // the wamid the send returned
	Status    string // sent, delivered, read, failed
	// Code and Title are a failed delivery's error (Meta's code, e.g. 131026).
	Code  int
	Title string
}

// WhatsAppStatus is the status webhook Meta posts about a message the business
// number c.To sent to c.
func (b *Builder) WhatsAppStatus(c WhatsAppContact, r Receipt) (Delivery, error) {
	b.n++
	st := map[string]any{"id": r.MessageID, "status": r.Status, "timestamp": strconv.FormatInt(b.now().Unix(), 10),
		"recipient_id": c.WAID()}
	if r.Status == "failed" {
		title := r.Title
		if title == "" {
			title = "Message undeliverable"
		}
		st["errors"] = []any{map[string]any{"code": r.Code, "title": title, "message": title,
			"error_data": map[string]any{"details": title}}}
	}
	value := map[string]any{"messaging_product": "whatsapp", "metadata": waMetadata(c.BusinessNumber()),
		"statuses": []any{st}}
	return parsed("waba", waWebhook(value), waba.Parse)
}

// WhatsAppText is a text message from c.
func (b *Builder) WhatsAppText(c WhatsAppContact, text string) (Delivery, error) {
	return b.waMessage(c, "text", map[string]any{"body": text})
}

// WhatsAppButton is a tap on a reply button (interactive button_reply).
func (b *Builder) WhatsAppButton(c WhatsAppContact, id, title string) (Delivery, error) {
	return b.waMessage(c, "interactive", map[string]any{"type": "button_reply",
		"button_reply": map[string]any{"id": id, "title": title}})
}

// WhatsAppList is a choice from a list message (interactive list_reply).
func (b *Builder) WhatsAppList(c WhatsAppContact, id, title, description string) (Delivery, error) {
	row := map[string]any{"id": id, "title": title}
	if description != "" {
		row["description"] = description
	}
	return b.waMessage(c, "interactive", map[string]any{"type": "list_reply", "list_reply": row})
}

// WhatsAppMedia is a media message (kind: image, document, video, audio, voice,
// sticker) with an optional caption, which is also the event's text.
func (b *Builder) WhatsAppMedia(c WhatsAppContact, kind, caption, filename string) (Delivery, error) {
	f, _ := FileFor(kind, "", "", "")
	return b.WhatsAppFile(c, kind, caption, filename, f.Content)
}

// WhatsAppFile is a media message whose file has content: Meta's media id in the
// webhook refers to it (see Content), with its SHA-256.
func (b *Builder) WhatsAppFile(c WhatsAppContact, kind, caption, filename string, content []byte) (Delivery, error) {
	typ, mime := kind, map[string]string{"image": "image/jpeg", "document": "application/pdf", "video": "video/mp4",
		"audio": "audio/mpeg", "voice": "audio/ogg; codecs=opus", "sticker": "image/webp"}[kind]
	ref := "media.sim." + strconv.Itoa(b.n+1)
	b.files.put(event.SourceWABA, ref, content)
	media := map[string]any{"id": ref, "mime_type": mime, "sha256": sha256Hex(content)}
	if kind == "voice" {
		typ, media["voice"] = "audio", true
	}
	if caption != "" {
		media["caption"] = caption
	}
	if filename != "" {
		media["filename"] = filename
	}
	return b.waMessage(c, typ, media)
}

// WhatsAppLocation is a shared location; its text is "name, address".
func (b *Builder) WhatsAppLocation(c WhatsAppContact, lat, lon float64, name, address string) (Delivery, error) {
	loc := map[string]any{"latitude": lat, "longitude": lon}
	if name != "" {
		loc["name"] = name
	}
	if address != "" {
		loc["address"] = address
	}
	return b.waMessage(c, "location", loc)
}

// tgUpdate is a Telegram update of kind field ("message", "callback_query").
func (b *Builder) tgUpdate(field string, inner map[string]any) (Delivery, error) {
	b.n++
	return parsed("telegram", map[string]any{"update_id": 900000 + b.n, field: inner}, telegram.Parse)
}

// tgChat is the chat (and sender) object of a private chat.
func tgChat(c TelegramChat) (chat, from map[string]any) {
	var id any = c.ChatID
	if n, err := strconv.ParseInt(c.ChatID, 10, 64); err == nil {
		id = n
	}
	return map[string]any{"id": id, "first_name": c.Name, "type": "private"},
		map[string]any{"id": id, "is_bot": false, "first_name": c.Name}
}

// TelegramText is a text message in the chat.
func (b *Builder) TelegramText(c TelegramChat, text string) (Delivery, error) {
	chat, from := tgChat(c)
	return b.tgUpdate("message", map[string]any{"message_id": b.n + 1, "from": from, "chat": chat,
		"date": b.now().Unix(), "text": text})
}

// TelegramCallback is a tap on an inline button whose callback data is data.
func (b *Builder) TelegramCallback(c TelegramChat, data string) (Delivery, error) {
	chat, from := tgChat(c)
	return b.tgUpdate("callback_query", map[string]any{"id": "cb.sim." + strconv.Itoa(b.n+1), "from": from,
		"message":       map[string]any{"message_id": b.n, "chat": chat, "date": b.now().Unix(), "text": "…"},
		"chat_instance": "sim", "data": data})
}

// OkdeskIssue describes the issue an Okdesk event is about.
type OkdeskIssue struct {
	ID    string
	Phone string // the issue contact's phone, when it has one: adds a phone: key
	Name  string // the contact's name
}

// okdesk is an Okdesk webhook about issue is, whose event object is ev.
func (b *Builder) okdesk(is OkdeskIssue, ev map[string]any) (Delivery, error) {
	b.n++
	// Each notification is a new change of the issue, seen by its updated_at.
	updated := b.now().Add(time.Duration(b.n) * time.Millisecond)
	issue := map[string]any{"id": is.ID, "updated_at": updated.Format(time.RFC3339Nano)}
	if is.Name != "" || is.Phone != "" {
		issue["client"] = map[string]any{"contact": map[string]any{"id": "1", "first_name": is.Name, "phone": is.Phone}}
	}
	return parsed("okdesk", map[string]any{"event": ev, "issue": issue}, okdesk.Parse)
}

// OkdeskStatus is okdesk.new_ticket_status: an engineer moved the issue from old
// to status (status codes, e.g. opened → completed).
func (b *Builder) OkdeskStatus(is OkdeskIssue, status, old string) (Delivery, error) {
	ev := map[string]any{"event_type": "new_ticket_status", "new_status": map[string]any{"code": status},
		"author": map[string]any{"id": "2", "type": "employee"}}
	if old != "" {
		ev["old_status"] = map[string]any{"code": old}
	}
	return b.okdesk(is, ev)
}

// OkdeskComment is okdesk.new_comment: a public or private comment by an author of
// authorType ("employee" or "contact").
func (b *Builder) OkdeskComment(is OkdeskIssue, text string, public bool, authorType string, files ...File) (Delivery, error) {
	ev := map[string]any{"event_type": "new_comment",
		"comment": map[string]any{"id": strconv.Itoa(5001 + b.n), "content": text, "is_public": public},
		"author":  map[string]any{"id": "2", "type": authorType}}
	if len(files) > 0 {
		ev["attachments"] = b.attachments(files, public)
	}
	return b.okdesk(is, ev)
}

// attachments are the attachments of an Okdesk event, their contents kept for the
// world's fetches.
func (b *Builder) attachments(files []File, public bool) []any {
	var atts []any
	for i, f := range files {
		id := strconv.Itoa(7001 + b.n*10 + i)
		b.files.put(event.SourceOkdesk, id, f.Content)
		atts = append(atts, map[string]any{"id": id, "is_public": public, "attachment_file_name": f.Name,
			"attachment_file_size": strconv.Itoa(len(f.Content)), "description": ""})
	}
	return atts
}

// OkdeskFiles is okdesk.new_files: an engineer attached files to the issue,
// public (the customer may see them) or not.
func (b *Builder) OkdeskFiles(is OkdeskIssue, files []File, public bool) (Delivery, error) {
	return b.okdesk(is, map[string]any{"event_type": "new_files", "attachments": b.attachments(files, public),
		"author": map[string]any{"id": "2", "type": "employee"}})
}

// Payment is a 1C payment notification.
type Payment struct {
	ID            string // event id; generated when empty
	Status        string // paid, partially_paid, unpaid, cancelled
	InvoiceID     string // generated when empty
	OkdeskIssueID string
	Phone         string
	Amount        float64
}

// OneCPayment is onec.payment, as 1C posts it to /webhooks/onec.
func (b *Builder) OneCPayment(p Payment) (Delivery, error) {
	b.n++
	if p.ID == "" {
		p.ID = "pay.sim." + strconv.Itoa(b.n)
	}
	if p.InvoiceID == "" {
		p.InvoiceID = "inv.sim." + strconv.Itoa(b.n)
	}
	body := map[string]any{"id": p.ID, "event": "payment", "status": p.Status, "currency": "RUB",
		"invoice": map[string]any{"id": p.InvoiceID}}
	if p.Amount != 0 {
		body["amount"] = p.Amount
	}
	if p.OkdeskIssueID != "" {
		body["okdesk_issue_id"] = p.OkdeskIssueID
	}
	if p.Phone != "" {
		body["phone"] = p.Phone
	}
	d, err := parsed("onec", body, onec.Parse)
	if err != nil {
		return d, fmt.Errorf("1C would be refused: %w", err)
	}
	return d, nil
}

// Raw is any event, delivered as it is: its source is the type's prefix ("okdesk"
// for okdesk.new_ticket).
func (b *Builder) Raw(typ string, keys []string, contact event.Contact, text string, data map[string]any) Delivery {
	b.n++
	src, _, _ := strings.Cut(typ, ".")
	if data == nil {
		data = map[string]any{}
	}
	return Delivery{Event: event.Event{Source: src, Type: typ, At: b.now(), DedupeKey: "sim:" + strconv.Itoa(b.n), Keys: keys,
		Contact: contact, Text: text, Data: data}}
}
