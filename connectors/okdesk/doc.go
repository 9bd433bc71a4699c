// Package okdesk connects fixit to Okdesk, the helpdesk: it authenticates and
// normalizes Okdesk's webhooks and performs the okdesk.* actions over the REST API.
//
// # Inbound webhooks
//
// Okdesk posts `{"event": {"event_type": ...}, "issue": {...}}`. Events about other
// entities carry another second object instead of "issue" ("company", "equipment",
// "agreement", "service_aim", ...); Parse handles any top-level object generically.
// Okdesk documents no webhook signature, so the server protects the endpoint with
// HTTP Basic credentials (OKDESK_USER, OKDESK_PASS) checked by VerifyBasic.
//
// Parse turns a body into exactly one event.Event:
//
//   - Type is "okdesk." + event_type for every event type, known or not; Source is "okdesk".
//   - ID is left empty: the inbox assigns it.
//   - Ids arrive as strings in webhooks and as numbers in the REST API; both are accepted.
//   - At is the most specific timestamp found, in this order: event.comment.created_at,
//     event.created_at, event.updated_at, <object>.updated_at, <object>.created_at; it is
//     zero when none parses as RFC 3339. It is reported in UTC.
//   - Keys: "okdesk:issue:<id>" for issue events; for other objects "okdesk:<kind>:<id>"
//     where kind is the object's name ("company", "equipment", "agreement", and
//     "service_object" for Okdesk's "service_aim" and "maintenance_entity"); plus
//     "phone:<E.164 digits>" when the contact carries a phone.
//   - Contact has Name and Phone of issue.client.contact (or issue.contact, the shape
//     some accounts send); Channel and ID stay empty because Okdesk is not a reply channel.
//   - Text is, for new_comment only, the comment content with HTML tags stripped and
//     entities unescaped (<br> and block tags become line breaks).
//
// # Dedupe keys
//
// Okdesk sends no event id and no event timestamp, so the dedupe key is derived from
// the payload. A retried delivery of the same event gets the same key (hashes are taken
// over canonical JSON: object keys sorted, insignificant whitespace dropped, so a
// re-serialized body hashes the same); two different events get different keys.
//
//	new_comment        okdesk:new_comment:<comment id>
//	new_ticket         okdesk:new_ticket:<issue id>
//	new_ticket_status  okdesk:new_ticket_status:<issue id>:<old code>→<new code>:<hash>
//	anything else      okdesk:<event_type>:<object id>:<hash>
//
// Comment ids are unique across an account and an issue is created once, so those two
// need no hash. For a status change the hash is taken over the event object together
// with the updated_at (when present): the author, the comment and the time
// entries of a change tell two otherwise identical transitions (opened→completed twice
// after a reopen) apart. For every other event, and whenever the id a rule needs is
// missing, the hash is taken over the whole canonical body and the object id segment is
// left out when there is none ("okdesk:<event_type>:<hash>"). <hash> is the first 16
// hex digits (64 bits) of the SHA-256 of the canonical JSON.
//
// # Event data
//
// Data is the whole body as decoded JSON ("event", "issue", ...; numbers as float64)
// plus these normalized top-level keys, each set only when the payload has the value:
//
//	event_type      string  always
//	object_type     string  "issue", "company", ... (the second object's name)
//	object_id       string  its id
//	issue_id        string  for issue events
//	contact_id      string  issue.client.contact.id
//	new_status      string  event.new_status.code
//	old_status      string  event.old_status.code
//	comment_id      string  event.comment.id
//	comment_public  bool    event.comment.is_public
//	comment_text    string  event.comment.content without HTML
//	author_type     string  event.author.type ("employee" or "contact")
//	author_id       string  event.author.id
//
// A flow can therefore write `event.data.new_status in ["completed", "closed"]`.
//
// # REST actions
//
// Client performs okdesk.find_contact, okdesk.create_contact,
// okdesk.find_or_create_contact, okdesk.create_issue, okdesk.comment,
// okdesk.change_status and okdesk.get_issue against OKDESK_API_URL with api_token as a
// query parameter (queries are built with url.Values, so "+" in a phone travels as
// "%2B"). Errors are *connectors.Error: Okdesk's {"errors": ...} body (a string, a
// list, or Rails-style field → messages) becomes the message; 429 and 5xx are retryable
// and carry Retry-After; the token never appears in an error.
//
// With the URL or the token unset the client runs dry: nothing is sent, Result.DryRun is
// set, Result.Data holds "dry_run": true, the last request it would have made as
// "request" ({method, path, query, body}) and all of them as "requests"; every id
// Okdesk would have answered is "dry-run" (a contact search finds contact "dry-run").
package okdesk
