// Package onec connects fixit to 1C:Enterprise.
//
// 1C has no standard webhook, so fixit defines one: the 1C side POSTs
// a JSON notification with an `Authorization: Bearer <ONEC_TOKEN>` header, checked
// with VerifyBearer. Parse validates it and produces one normalized event.Event of
// type "onec.<event>" ("onec.payment" for payments):
//
//	{"id": "unique event id", "event": "payment",
//	 "invoice": {"id": "...", "number": "...", "date": "..."},
//	 "status": "paid|partially_paid|unpaid|cancelled", "amount": 1500.00,
//	 "currency": "RUB", "paid_at": "RFC 3339", "okdesk_issue_id": 153, "phone": "+7..."}
//
// id, event and status are required; a missing or malformed field is a *FieldError
// and a body that is not a JSON object wraps ErrBadJSON, so the webhook handler can
// answer 400 with err.Error(). The dedupe key is "onec:<id>", so 1C may retry a
// notification as often as it likes.
//
// On the 1C side, a handler of the payment document's posting (or a scheduled job
// draining a queue register, which gives retries) sends the notification; a sketch
// in BSL, assuming Структура holds the fields above:
//
//	Запись = Новый ЗаписьJSON;
//	Запись.УстановитьСтроку();
//	ЗаписатьJSON(Запись, Структура);
//	Заголовки = Новый Соответствие;
//	Заголовки.Вставить("Content-Type", "application/json; charset=utf-8");
//	Заголовки.Вставить("Authorization", "Bearer " + Токен);
//	Запрос = Новый HTTPЗапрос("/webhooks/onec", Заголовки);
//	Запрос.УстановитьТелоИзСтроки(Запись.Закрыть(), КодировкаТекста.UTF8, ИспользованиеByteOrderMark.НеИспользовать);
//	Соединение = Новый HTTPСоединение("fixit.example.ru", 443, , , , 30, Новый ЗащищенноеСоединениеOpenSSL());
//	Ответ = Соединение.ОтправитьДляОбработки(Запрос); // 200: stored (also for a repeat); 400: fix the payload
//
// Outbound, Client performs the "onec.read" action through 1C's standard OData
// interface (/odata/standard.odata/<Object>?$format=json&$filter=...) with HTTP Basic
// auth. With no OData URL configured it runs dry and returns an empty item list.
package onec
