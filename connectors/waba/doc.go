// Package waba connects fixit to the WhatsApp Business Platform (Cloud API).
//
// Inbound, a webhook POST is checked with VerifySignature over the raw body bytes
// (before any JSON decoding: Meta signs its own \uXXXX-escaped serialization, which
// re-encoding never reproduces) and then normalized by Parse into events: one
// "waba.message" per message, one "waba.status" per status and one "waba.error" per
// out-of-band error, over every entry and change of the payload. The GET subscription
// handshake is answered with VerifyHandshake.
//
// Outbound, Client delivers the "send" action on the "waba" channel (text, reply
// buttons, list, template) and performs "waba.mark_read". It enforces the 24-hour
// customer-service window before calling Meta, classifies Graph API errors into
// *connectors.Error, and runs dry (logging the payload instead of sending it) when
// its credentials are unset.
package waba
