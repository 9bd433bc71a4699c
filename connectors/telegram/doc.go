// Package telegram connects fixit to the Telegram Bot API.
//
// Inbound, Telegram POSTs one JSON Update per request to the webhook. The only
// authentication is the X-Telegram-Bot-Api-Secret-Token header (Telegram does not
// sign bodies), checked with VerifySecret. Parse turns the Update into one normalized
// event.Event:
//
//   - message, edited_message → "telegram.message" (Data["edited"] tells them apart);
//   - callback_query → "telegram.callback";
//   - any other update kind → "telegram.<field name>" (e.g. "telegram.my_chat_member"),
//     so that nothing Telegram sends is lost even if no flow handles it yet.
//
// The dedupe key is "telegram:<update_id>": Telegram re-sends an update until the
// webhook answers 2xx, always with the same update_id.
//
// Ids are decoded as json.Number, so chat ids (negative for groups, up to 52
// significant bits) and update ids are rendered exactly as decimal strings in the
// keys, the contact and the normalized Data fields. Other numbers in Data are float64,
// as event.Data documents.
//
// Outbound, Client performs the "send" action on the "telegram" channel
// (sendMessage with an optional inline keyboard) and the "telegram.answer_callback"
// action (answerCallbackQuery). The bot token is part of every Bot API URL, so the
// client redacts it from every error it returns and never logs URLs. With no token
// configured the client runs dry: it validates and builds the request, logs it and
// reports Result.DryRun.
package telegram
