package okdesk

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/fixit-exchange/fixit/engine/event"

	"github.com/fixit-exchange/fixit/connectors"
)

// Okdesk event types that get a dedicated dedupe key (see the package documentation).
const (
	EventNewTicket       = "new_ticket"
	EventNewTicketStatus = "new_ticket_status"
	EventNewComment      = "new_comment"
)

// FieldError reports a required field of a webhook body that is missing or unusable.
// The server answers 400 naming Field.
type FieldError struct {
	Field  string // dotted path, e.g. "event.event_type"
	Reason string
}

func (e *FieldError) Error() string {
	return "okdesk webhook: field " + e.Field + ": " + e.Reason
}

// objectKinds maps the name of a webhook's second top-level object to the kind used in
// its correlation key. Names not listed here are used as they are.
var objectKinds = map[string]string{
	"issue":              "issue",
	"company":            "company",
	"equipment":          "equipment",
	"agreement":          "agreement",
	"service_aim":        "service_object",
	"maintenance_entity": "service_object",
	"contact":            "contact",
}

// objectPreference is the order in which known object names are looked for when a body
// carries more than one top-level object besides "event".
var objectPreference = []string{"issue", "company", "equipment", "agreement", "service_aim", "maintenance_entity", "contact"}

// Parse normalizes one Okdesk webhook body into events (always exactly one on success).
// It fails on invalid JSON, on a body that is not a JSON object and, with a *FieldError
// naming "event.event_type", on a body without an event type.
func Parse(body []byte) ([]event.Event, error) {
	root, err := decodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("parse okdesk webhook: %w", err)
	}
	evObj, ok := root["event"].(map[string]any)
	if !ok {
		return nil, &FieldError{Field: "event.event_type", Reason: "missing: the body has no event object"}
	}
	typ, ok := evObj["event_type"].(string)
	typ = strings.TrimSpace(typ)
	if !ok || typ == "" {
		return nil, &FieldError{Field: "event.event_type", Reason: "missing or not a non-empty string"}
	}

	objName, obj := secondObject(root)
	objID := idString(obj["id"])
	contact := contactOf(obj)

	ev := event.Event{
		Source:    event.SourceOkdesk,
		Type:      "okdesk." + typ,
		Keys:      []string{},
		At:        eventTime(evObj, obj),
		DedupeKey: dedupeKey(typ, root, evObj, objName, obj, objID),
	}

	data := map[string]any{"event_type": typ}
	if objName != "" {
		data["object_type"] = objName
	}
	if objID != "" {
		data["object_id"] = objID
		kind := objectKinds[objName]
		if kind == "" && isIdent(objName) {
			kind = objName
		}
		if kind == "issue" {
			ev.Keys = event.AddKey(ev.Keys, event.OkdeskIssueKey(objID))
			data["issue_id"] = objID
		} else if kind != "" {
			ev.Keys = event.AddKey(ev.Keys, "okdesk:"+kind+":"+objID)
		}
	}
	if contact != nil {
		ev.Contact.Name = contactName(contact)
		ev.Contact.Phone = contactPhone(contact)
		if ev.Contact.Phone != "" {
			// "+": the digits are E.164 already and must not be read as a trunk-prefixed number.
			ev.Keys = event.AddKey(ev.Keys, event.PhoneKey("+"+ev.Contact.Phone))
		}
		if id := idString(contact["id"]); id != "" {
			data["contact_id"] = id
		}
	}
	if code := statusCode(evObj["new_status"]); code != "" {
		data["new_status"] = code
	}
	if code := statusCode(evObj["old_status"]); code != "" {
		data["old_status"] = code
	}
	if author, ok := evObj["author"].(map[string]any); ok {
		if t, ok := author["type"].(string); ok && t != "" {
			data["author_type"] = t
		}
		if id := idString(author["id"]); id != "" {
			data["author_id"] = id
		}
	}
	if comment, ok := evObj["comment"].(map[string]any); ok {
		if id := idString(comment["id"]); id != "" {
			data["comment_id"] = id
		}
		if public, ok := boolValue(comment["is_public"]); ok {
			data["comment_public"] = public
		}
		if content, ok := comment["content"].(string); ok {
			text := stripHTML(content)
			data["comment_text"] = text
			if typ == EventNewComment {
				ev.Text = text
			}
		}
	}

	if issue, ok := data["issue_id"].(string); ok && data["comment_public"] != false {
		if f := publicAttachments(issue, evObj["attachments"]); f != nil {
			data[event.FieldFetch] = f // downloaded before the flow sees the event
		}
	}

	// Only now turn json.Number into float64: ids and hashes above used the literals.
	plain, err := plainJSON(root)
	if err != nil {
		return nil, fmt.Errorf("parse okdesk webhook: %w", err)
	}
	for k, v := range plain.(map[string]any) {
		if _, normalized := data[k]; !normalized {
			data[k] = v
		}
	}
	ev.Data = data
	return []event.Event{ev}, nil
}

// publicAttachments is the fetch (event.FieldFetch) of the attachments of an
// issue's event that the customer may see (is_public), or nil when there is none:
// private files stay in Okdesk.
func publicAttachments(issue string, v any) map[string]any {
	list, _ := v.([]any)
	var items []any
	for _, x := range list {
		a, _ := x.(map[string]any)
		if public, _ := boolValue(a["is_public"]); !public {
			continue
		}
		id := idString(a["id"])
		if id == "" {
			continue
		}
		item := map[string]any{"ref": id, "issue": issue, "kind": "document"}
		if name, _ := a["attachment_file_name"].(string); name != "" {
			item["name"] = name
		}
		if n, err := strconv.ParseInt(idString(a["attachment_file_size"]), 10, 64); err == nil && n > 0 {
			item["size"] = n
		}
		items = append(items, item)
	}
	if len(items) == 0 {
		return nil
	}
	return map[string]any{"source": event.SourceOkdesk, "items": items}
}

// decodeObject decodes body as one JSON object, keeping numbers as json.Number.
func decodeObject(body []byte) (map[string]any, error) {
	m, err := connectors.DecodeObject(body)
	if err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	return m, nil
}

// plainJSON converts json.Number values to float64, as encoding/json decodes into any.
// A number out of float64 range is an error, as it is for encoding/json.
func plainJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("decode json: number %.40q: %w", string(x), err)
		}
		return f, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			p, err := plainJSON(e)
			if err != nil {
				return nil, err
			}
			out[k] = p
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			p, err := plainJSON(e)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	default:
		return v, nil
	}
}

// secondObject finds the entity the event is about: "issue" when present, else a known
// entity name, else the first other top-level object in key order.
func secondObject(root map[string]any) (string, map[string]any) {
	for _, name := range objectPreference {
		if m, ok := root[name].(map[string]any); ok {
			return name, m
		}
	}
	names := make([]string, 0, len(root))
	for k, v := range root {
		if _, ok := v.(map[string]any); ok && k != "event" {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return "", nil
	}
	sort.Strings(names)
	return names[0], root[names[0]].(map[string]any)
}

// dedupeKey derives the dedupe key as documented in doc.go.
func dedupeKey(typ string, root, evObj map[string]any, objName string, obj map[string]any, objID string) string {
	switch typ {
	case EventNewComment:
		if comment, ok := evObj["comment"].(map[string]any); ok {
			if id := idString(comment["id"]); id != "" {
				return "okdesk:" + typ + ":" + id
			}
		}
	case EventNewTicket:
		if objID != "" && objName == "issue" {
			return "okdesk:" + typ + ":" + objID
		}
	case EventNewTicketStatus:
		if objID != "" && objName == "issue" {
			in := map[string]any{"event": evObj}
			if u, ok := obj["updated_at"]; ok {
				in["issue_updated_at"] = u
			}
			return fmt.Sprintf("okdesk:%s:%s:%s→%s:%s", typ, objID,
				statusCode(evObj["old_status"]), statusCode(evObj["new_status"]), shortHash(in))
		}
	}
	if objID != "" {
		return "okdesk:" + typ + ":" + objID + ":" + shortHash(root)
	}
	return "okdesk:" + typ + ":" + shortHash(root)
}

// shortHash is the first 16 hex digits of the SHA-256 of v's canonical JSON (maps are
// marshalled with sorted keys; json.Number keeps the literal).
func shortHash(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable for decoded JSON; hash the error text rather than panic.
		b = []byte(err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// eventTime picks the most specific timestamp of the payload (see doc.go).
func eventTime(evObj, obj map[string]any) time.Time {
	var candidates []any
	if comment, ok := evObj["comment"].(map[string]any); ok {
		candidates = append(candidates, comment["created_at"])
	}
	candidates = append(candidates, evObj["created_at"], evObj["updated_at"])
	if obj != nil {
		candidates = append(candidates, obj["updated_at"], obj["created_at"])
	}
	for _, c := range candidates {
		s, ok := c.(string)
		if !ok || s == "" {
			continue
		}
		// An offset can push a year-9999 time past what RFC 3339 (and JSON) can hold.
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.UTC().Year() >= 1 && t.UTC().Year() <= 9999 {
			return t.UTC()
		}
	}
	return time.Time{}
}

// contactOf returns the issue's contact: issue.client.contact in the documented shape,
// issue.contact in the shape some accounts (and the REST API) use.
func contactOf(obj map[string]any) map[string]any {
	if obj == nil {
		return nil
	}
	if client, ok := obj["client"].(map[string]any); ok {
		if c, ok := client["contact"].(map[string]any); ok {
			return c
		}
	}
	if c, ok := obj["contact"].(map[string]any); ok {
		return c
	}
	return nil
}

// contactName is the contact's "name" (REST shape) or its first and last name.
func contactName(c map[string]any) string {
	if n, ok := c["name"].(string); ok && strings.TrimSpace(n) != "" {
		return strings.TrimSpace(n)
	}
	var parts []string
	for _, k := range []string{"first_name", "last_name"} {
		if s, ok := c[k].(string); ok && strings.TrimSpace(s) != "" {
			parts = append(parts, strings.TrimSpace(s))
		}
	}
	return strings.Join(parts, " ")
}

// contactPhone is the contact's phone (or mobile phone) as E.164 digits, or "".
func contactPhone(c map[string]any) string {
	for _, k := range []string{"phone", "mobile_phone"} {
		if s, ok := c[k].(string); ok {
			if p := event.NormalizePhone(s); p != "" {
				return p
			}
		}
	}
	return ""
}

// statusCode reads a status given as {"code": ...} (the documented shape) or as a bare code.
func statusCode(v any) string {
	switch x := v.(type) {
	case map[string]any:
		s, _ := x["code"].(string)
		return strings.TrimSpace(s)
	case string:
		return strings.TrimSpace(x)
	}
	return ""
}

// idString reads an id given as a string (webhooks) or an integer number (REST API).
// It returns "" for anything else, and for strings that cannot be an id (empty, longer
// than 64 bytes, holding spaces, control characters or ':').
func idString(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = strings.TrimSpace(x)
	case json.Number:
		if _, err := strconv.ParseInt(string(x), 10, 64); err != nil {
			return ""
		}
		s = string(x)
	case float64:
		if x != float64(int64(x)) {
			return ""
		}
		s = strconv.FormatInt(int64(x), 10)
	default:
		return ""
	}
	if s == "" || len(s) > 64 {
		return ""
	}
	for _, r := range s {
		if r == ':' || unicode.IsSpace(r) || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ""
		}
	}
	return s
}

// boolValue reads a boolean given as a JSON bool or as the strings "true"/"false".
func boolValue(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b, true
		}
	}
	return false, false
}

// isIdent reports whether s is a lower-case identifier usable inside a correlation key.
func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
