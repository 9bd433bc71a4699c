package sim

import (
	"strconv"
	"strings"

	"github.com/fixit-exchange/fixit/engine/event"
)

// The constructors below build events in the normalized shape the connectors
// produce (connectors/*/testdata/golden), with fresh dedupe keys and the world's
// clock as their time. They do not process the event: pass it to World.Inject.

// WhatsAppContact is a WhatsApp customer.
type WhatsAppContact struct {
	Phone string // any format; the wa_id is its E.164 digits
	Name  string
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

// mediaKinds are the kinds of WhatsApp messages that carry a file.
var mediaKinds = []string{"image", "document", "video", "audio", "voice", "sticker"}

func (w *World) waMessage(c WhatsAppContact, typ, kind, text string, extra map[string]any) event.Event {
	w.nIn++
	id := c.WAID()
	wamid := "wamid.sim.in." + strconv.Itoa(w.nIn)
	data := map[string]any{"from": id, "id": wamid, "kind": kind, "type": typ,
		"timestamp": strconv.FormatInt(w.now.Unix(), 10), "phone_number_id": "sim", "display_phone_number": "sim", "waba_id": "sim"}
	for k, v := range extra {
		data[k] = v
	}
	return event.Event{Source: event.SourceWABA, Type: event.TypeWABAMessage, At: w.now, DedupeKey: "waba:" + wamid,
		Keys:    event.AddKey([]string{event.WABAKey(id)}, event.PhoneKey(id)),
		Contact: event.Contact{Channel: "waba", ID: id, Name: c.Name, Phone: id}, Text: text, Data: data}
}

// WhatsAppText is a text message from c.
func (w *World) WhatsAppText(c WhatsAppContact, text string) event.Event {
	return w.waMessage(c, "text", "text", text, map[string]any{"text": map[string]any{"body": text}})
}

// WhatsAppButton is a tap on a reply button (interactive button_reply).
func (w *World) WhatsAppButton(c WhatsAppContact, id, title string) event.Event {
	return w.waMessage(c, "interactive", "button_reply", title, map[string]any{"reply_id": id, "reply_title": title,
		"interactive": map[string]any{"type": "button_reply", "button_reply": map[string]any{"id": id, "title": title}}})
}

// WhatsAppList is a choice from a list message (interactive list_reply).
func (w *World) WhatsAppList(c WhatsAppContact, id, title, description string) event.Event {
	row := map[string]any{"id": id, "title": title}
	extra := map[string]any{"reply_id": id, "reply_title": title, "interactive": map[string]any{"type": "list_reply", "list_reply": row}}
	if description != "" {
		row["description"], extra["reply_description"] = description, description
	}
	return w.waMessage(c, "interactive", "list_reply", title, extra)
}

// WhatsAppMedia is a media message (kind: image, document, video, audio, voice,
// sticker) with an optional caption, which is also the event's text.
func (w *World) WhatsAppMedia(c WhatsAppContact, kind, caption, filename string) event.Event {
	mime := map[string]string{"image": "image/jpeg", "document": "application/pdf", "video": "video/mp4",
		"audio": "audio/mpeg", "voice": "audio/ogg; codecs=opus", "sticker": "image/webp"}[kind]
	media := map[string]any{"id": "media.sim." + strconv.Itoa(w.nIn+1), "mime_type": mime}
	extra := map[string]any{"media_id": media["id"], "mime_type": mime, kind: media}
	if caption != "" {
		media["caption"], extra["caption"] = caption, caption
	}
	if filename != "" {
		media["filename"], extra["filename"] = filename, filename
	}
	return w.waMessage(c, kind, kind, caption, extra)
}

// WhatsAppLocation is a shared location; its text is "name, address".
func (w *World) WhatsAppLocation(c WhatsAppContact, lat, lon float64, name, address string) event.Event {
	loc := map[string]any{"latitude": lat, "longitude": lon}
	var parts []string
	if name != "" {
		loc["name"] = name
		parts = append(parts, name)
	}
	if address != "" {
		loc["address"] = address
		parts = append(parts, address)
	}
	return w.waMessage(c, "location", "location", strings.Join(parts, ", "), map[string]any{"location": loc})
}

func (w *World) tgUpdate(c TelegramChat, typ, text string, data map[string]any) event.Event {
	w.nIn++
	upd := strconv.Itoa(900000 + w.nIn)
	data["update_id"], data["chat_id"] = upd, c.ChatID
	data["from"] = map[string]any{"id": c.ChatID, "first_name": c.Name, "is_bot": false}
	return event.Event{Source: event.SourceTelegram, Type: typ, At: w.now, DedupeKey: "telegram:" + upd,
		Keys: []string{event.TelegramKey(c.ChatID)}, Contact: event.Contact{Channel: "telegram", ID: c.ChatID, Name: c.Name},
		Text: text, Data: data}
}

// TelegramText is a text message in the chat.
func (w *World) TelegramText(c TelegramChat, text string) event.Event {
	return w.tgUpdate(c, event.TypeTelegramMessage, text, map[string]any{"kind": "text", "text": text, "edited": false,
		"message_id": strconv.Itoa(w.nIn + 1), "date": w.now.Unix(),
		"chat": map[string]any{"id": c.ChatID, "first_name": c.Name, "type": "private"}})
}

// TelegramCallback is a tap on an inline button whose callback data is data.
func (w *World) TelegramCallback(c TelegramChat, data string) event.Event {
	id := "cb.sim." + strconv.Itoa(w.nIn+1)
	return w.tgUpdate(c, event.TypeTelegramCallback, data, map[string]any{"kind": "callback", "data": data,
		"callback_id": id, "id": id, "message_id": strconv.Itoa(w.nIn)})
}

// OkdeskIssue describes the issue an Okdesk event is about.
type OkdeskIssue struct {
	ID    string
	Phone string // the issue contact's phone, when it has one: adds a phone: key
	Name  string // the contact's name
}

func (w *World) okdesk(is OkdeskIssue, typ, text, dedupe string, data map[string]any) event.Event {
	keys := event.AddKey([]string{event.OkdeskIssueKey(is.ID)}, event.PhoneKey(is.Phone))
	data["event_type"], data["object_type"], data["object_id"], data["issue_id"] = typ, "issue", is.ID, is.ID
	issue := map[string]any{"id": is.ID}
	if is.Name != "" || is.Phone != "" {
		issue["client"] = map[string]any{"contact": map[string]any{"first_name": is.Name, "phone": is.Phone}}
	}
	data["issue"] = issue
	return event.Event{Source: event.SourceOkdesk, Type: "okdesk." + typ, At: w.now, DedupeKey: dedupe, Keys: keys,
		Contact: event.Contact{Name: is.Name, Phone: event.NormalizePhone(is.Phone)}, Text: text, Data: data}
}

// OkdeskStatus is okdesk.new_ticket_status: an engineer moved the issue from old
// to status (status codes, e.g. opened → completed).
func (w *World) OkdeskStatus(is OkdeskIssue, status, old string) event.Event {
	w.nIn++
	ev := map[string]any{"event_type": "new_ticket_status", "new_status": map[string]any{"code": status},
		"author": map[string]any{"id": "2", "type": "employee"}}
	data := map[string]any{"new_status": status, "author_type": "employee", "author_id": "2", "event": ev}
	if old != "" {
		data["old_status"] = old
		ev["old_status"] = map[string]any{"code": old}
	}
	dedupe := "okdesk:new_ticket_status:" + is.ID + ":" + old + "→" + status + ":sim" + strconv.Itoa(w.nIn)
	return w.okdesk(is, "new_ticket_status", "", dedupe, data)
}

// OkdeskComment is okdesk.new_comment: a public or private comment by an author of
// authorType ("employee" or "contact").
func (w *World) OkdeskComment(is OkdeskIssue, text string, public bool, authorType string) event.Event {
	w.nIn++
	id := strconv.Itoa(5000 + w.nIn)
	data := map[string]any{"comment_id": id, "comment_public": public, "comment_text": text, "author_type": authorType,
		"author_id": "2", "event": map[string]any{"event_type": "new_comment",
			"comment": map[string]any{"id": id, "content": text, "is_public": public},
			"author":  map[string]any{"id": "2", "type": authorType}}}
	return w.okdesk(is, "new_comment", text, "okdesk:new_comment:"+id, data)
}

// Payment is a 1C payment notification (DESIGN B6).
type Payment struct {
	ID            string // event id; generated when empty
	Status        string // paid, partially_paid, unpaid, cancelled
	InvoiceID     string // generated when empty
	OkdeskIssueID string
	Phone         string
	Amount        float64
}

// OneCPayment is onec.payment. Its keys are the invoice, the Okdesk issue and the
// phone, in that order, as connectors/onec makes them.
func (w *World) OneCPayment(p Payment) event.Event {
	w.nIn++
	if p.ID == "" {
		p.ID = "pay.sim." + strconv.Itoa(w.nIn)
	}
	if p.InvoiceID == "" {
		p.InvoiceID = "inv.sim." + strconv.Itoa(w.nIn)
	}
	data := map[string]any{"id": p.ID, "event": "payment", "status": p.Status, "invoice_id": p.InvoiceID,
		"invoice": map[string]any{"id": p.InvoiceID}, "currency": "RUB"}
	if p.Amount != 0 {
		data["amount"] = p.Amount
	}
	keys := []string{event.OneCInvoiceKey(p.InvoiceID)}
	if p.OkdeskIssueID != "" {
		data["okdesk_issue_id"] = p.OkdeskIssueID
		keys = append(keys, event.OkdeskIssueKey(p.OkdeskIssueID))
	}
	phone := event.NormalizePhone(p.Phone)
	if phone != "" {
		data["phone"], data["phone_raw"] = phone, p.Phone
		keys = append(keys, event.PhoneKey(phone))
	}
	return event.Event{Source: event.SourceOneC, Type: event.TypeOneCPayment, At: w.now, DedupeKey: "onec:" + p.ID,
		Keys: keys, Contact: event.Contact{Phone: phone}, Data: data}
}

// Raw is any event: its source is the type's prefix ("okdesk" for okdesk.new_ticket).
func (w *World) Raw(typ string, keys []string, contact event.Contact, text string, data map[string]any) event.Event {
	w.nIn++
	src, _, _ := strings.Cut(typ, ".")
	if data == nil {
		data = map[string]any{}
	}
	return event.Event{Source: src, Type: typ, At: w.now, DedupeKey: "sim:" + strconv.Itoa(w.nIn), Keys: keys,
		Contact: contact, Text: text, Data: data}
}
