package scenario

import (
	"fmt"
	"strings"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/sim"
)

// This file is the one description of the scenario format. The parser checks
// files against it, and docs/scenarios.md is checked against it by a test.

// shared settings a scenario and the file's top level both take.
var settingFields = []engine.Field{
	{Name: "contact", Type: engine.TObject, Doc: "the default WhatsApp customer `{phone, name}`; default `+79161234567`, `Анна`"},
	{Name: "telegram", Type: engine.TObject, Doc: "the default Telegram customer `{chat_id, name}`; default `512345678`, `Анна`"},
	{Name: "start", Type: engine.TString, Doc: "the fake clock's start, RFC 3339; default `2026-11-29T10:00:00+03:00`"},
	{Name: "env", Type: engine.TObject, Doc: "`FLOW_*` variables the flow reads as `env.NAME` (nothing is read from the real environment, so runs are reproducible)"},
}

// FileSpec is the top level of a scenario file.
var FileSpec = engine.Object{Name: "scenario file", Doc: "A scenario file: scenarios and their defaults.", Fields: append([]engine.Field{
	{Name: "scenarios", Type: engine.TObject, Required: true, Doc: "the list of scenarios"},
	{Name: "flows", Type: engine.TString, Doc: "the flows the scenarios run against, loaded together as the server loads its folder: a flow file or folder, or a list of them, relative to the scenario file (e.g. `[okdesk_to_1c_invoice.yaml, ../flows.d]`); default the scenario file's folder. `fixit test --flows` overrides it"},
}, settingFields...)}

// ScenarioSpec is one scenario.
var ScenarioSpec = engine.Object{Name: "scenario", Doc: "One named sequence of steps run in a fresh world.", Fields: append([]engine.Field{
	{Name: "name", Type: engine.TString, Required: true, Doc: "what the scenario shows, unique in the file"},
	{Name: "steps", Type: engine.TObject, Required: true, Doc: "the list of steps"},
}, settingFields...)}

// ContactSpec is a WhatsApp customer; TelegramSpec a Telegram one.
var (
	ContactSpec  = engine.Object{Name: "contact", Fields: []engine.Field{{Name: "phone", Type: engine.TString}, {Name: "name", Type: engine.TString}}}
	TelegramSpec = engine.Object{Name: "telegram", Fields: []engine.Field{{Name: "chat_id", Type: engine.TString}, {Name: "name", Type: engine.TString}}}
)

// StepSpec describes one step kind: its key, the keys of its long form, and the
// parameter its short form (a scalar) stands for.
type StepSpec struct {
	engine.Object
	// Short is the field a scalar value sets ("" when the step has no short form);
	// ShortExample shows it, as the documentation's table cell.
	Short, ShortExample string
	// Inbound steps deliver one event, whose outcome `expect` may check.
	Inbound bool
	// Keyed steps take a mapping of action kinds (mock, complete) instead of
	// fixed fields; Form shows it.
	Keyed bool
	Form  string
}

func step(name, doc string, inbound bool, short, example string, fields ...engine.Field) StepSpec {
	return StepSpec{Object: engine.Object{Name: name, Doc: doc, Fields: fields}, Short: short, ShortExample: example, Inbound: inbound}
}

// text is a field holding a string.
func text(name, doc string, enum ...string) engine.Field {
	return engine.Field{Name: name, Type: engine.TString, Doc: doc, Enum: enum}
}

// StepSpecs lists every step kind.
var StepSpecs = []StepSpec{
	step("whatsapp", "`waba.message` kind `text` from the contact (`from`: another phone)", true, "text", "`whatsapp: \"text\"`",
		text("text", "the message"), text("from", "another phone"), text("to", "the business number written to (a phone_number_id; default `200000000000001`)"), text("name", "the contact's profile name")),
	step("button", "`waba.message` kind `button_reply`; a title or id is completed from the buttons the contact last got", true, "id", "`button: \"Да\"` (id or title)",
		text("id", "the button's id"), text("title", "its title"), text("from", "another phone"), text("to", "the business number written to (a phone_number_id; default `200000000000001`)"), text("name", "the contact's profile name")),
	step("list", "`waba.message` kind `list_reply`", true, "id", "`list: \"slot_am\"` (id or title)",
		text("id", "the row's id"), text("title", "its title"), text("description", "its description"), text("from", "another phone"), text("to", "the business number written to (a phone_number_id; default `200000000000001`)"), text("name", "the contact's profile name")),
	step("photo", "`waba.message` kind `image`; the caption is the event's text; the photo is downloaded first and reaches the flow as `event.data.file`", true, "caption", "`photo: \"caption\"` (`\"\"`: none)",
		text("caption", "the caption"), text("fixture", "a sample file (default photo.jpg)", sim.FixtureNames()...), text("content", "the file's bytes, as text"),
		text("filename", "the file's name"), text("from", "another phone"), text("to", "the business number written to (a phone_number_id; default `200000000000001`)"), text("name", "the contact's profile name")),
	step("document", "`waba.message` kind `document`, its file in `event.data.file`", true, "caption", "`document: \"caption\"`",
		text("caption", "the caption"), text("fixture", "a sample file (default document.pdf)", sim.FixtureNames()...), text("content", "the file's bytes, as text"),
		text("filename", "the file's name"), text("from", "another phone"), text("to", "the business number written to (a phone_number_id; default `200000000000001`)"), text("name", "the contact's profile name")),
	step("media", "`waba.message` of kind `image`, `document`, `video`, `audio`, `voice`, `sticker`, its file in `event.data.file`", true, "", "",
		text("kind", "the media kind", sim.MediaKinds...), text("caption", "the caption"), text("fixture", "a sample file (default: one of the kind)", sim.FixtureNames()...),
		text("content", "the file's bytes, as text"), text("filename", "the file's name"), text("from", "another phone"), text("to", "the business number written to (a phone_number_id; default `200000000000001`)"), text("name", "the contact's profile name")),
	step("location", "`waba.message` kind `location`; text is `name, address`", true, "", "",
		text("latitude", "degrees"), text("longitude", "degrees"), text("name", "the place's name"), text("address", "its address"), text("from", "another phone"), text("to", "the business number written to (a phone_number_id; default `200000000000001`)")),
	step("telegram", "`telegram.message`", true, "text", "`telegram: \"text\"`",
		text("text", "the message"), text("chat", "another chat id"), text("name", "the sender's name")),
	step("callback", "`telegram.callback` (an inline button tap)", true, "data", "`callback: \"data\"`",
		text("data", "the button's callback data"), text("chat", "another chat id"), text("name", "the sender's name")),
	step("okdesk.status", "`okdesk.new_ticket_status`; `issue` defaults to the dialog's bound `okdesk:issue:<id>`; `phone` adds a `phone:` key", true, "status", "`okdesk.status: completed`",
		engine.Field{Name: "status", Type: engine.TString, Required: true, Doc: "the new status code"}, text("old", "the previous status code"), text("issue", "the issue id"), text("phone", "a phone the event carries")),
	step("okdesk.comment", "`okdesk.new_comment`", true, "text", "`okdesk.comment: \"text\"` (public, by an employee)",
		text("text", "the comment"), engine.Field{Name: "public", Type: engine.TBool, Doc: "visible to the customer (default true)"},
		text("author", "who wrote it (default employee)", "employee", "contact"), text("issue", "the issue id"), text("phone", "a phone the event carries"),
		text("fixture", "a sample file attached to the comment", sim.FixtureNames()...), text("content", "an attached file's bytes, as text"), text("filename", "the attached file's name")),
	step("okdesk.files", "`okdesk.new_files`: an engineer attached files to the issue (`issue` defaults to the dialog's); public ones are downloaded and reach the flow as `event.data.files`", true, "fixture", "`okdesk.files: document.pdf`",
		text("fixture", "a sample file", sim.FixtureNames()...), text("content", "the file's bytes, as text (instead of a fixture)"), text("filename", "the file's name"),
		engine.Field{Name: "public", Type: engine.TBool, Doc: "visible to the customer (default true)"}, text("issue", "the issue id"), text("phone", "a phone the event carries")),
	step("onec.payment", "`onec.payment`; the short form (and a long form without `okdesk_issue_id` and `phone`) uses the dialog's issue and the contact's phone; keys: invoice, issue, phone, in that order", true, "status", "`onec.payment: paid`",
		text("status", "paid (default), partially_paid, unpaid or cancelled"), text("okdesk_issue_id", "the Okdesk issue"), text("phone", "the payer's phone"),
		text("invoice_id", "the invoice"), engine.Field{Name: "amount", Type: engine.TString, Doc: "the amount"}, text("id", "the notification's id")),
	step("event", "any event; its source is the type's prefix", true, "", "",
		engine.Field{Name: "type", Type: engine.TString, Required: true, Doc: "the event type"}, engine.Field{Name: "keys", Type: engine.TAny, Doc: "correlation keys"},
		engine.Field{Name: "contact", Type: engine.TObject, Doc: "`{channel, id, name, phone}`"}, text("text", "the event's text"), engine.Field{Name: "data", Type: engine.TAny, Doc: "the source's own fields"}),
	step("receipt", "`waba.status` about the last WhatsApp message the contact got: a delivery receipt (`failed`: a `waba.message_failed` event follows for the dialog)", true, "status", "`receipt: read`",
		engine.Field{Name: "status", Type: engine.TString, Enum: []string{"sent", "delivered", "read", "failed"}, Doc: "how far the message got"},
		engine.Field{Name: "code", Type: engine.TString, Doc: "a failure's error code, e.g. `131026` (default 131026)"}, text("title", "a failure's error title"),
		text("from", "another phone: the last message that contact got")),
	step("advance", "moves the clock (`90s`, `15m`, `25h`, `2d`, `1d12h`); every timer due on the way fires at its due time, in due order, as a `timer` event", false, "duration", "`advance: 25h`"),
	{Object: engine.Object{Name: "mock", Doc: "sets how outbound actions answer, see below"}, Keyed: true, Form: "`{KIND: ANSWER, …}`"},
	{Object: engine.Object{Name: "complete", Doc: "delivers the result a `pending` mock held back, see below"}, Keyed: true, Form: "`{KIND: RESULT, …}`"},
	step("takeover", "an operator takes the dialog over, as `POST /api/v1/dialogs/{id}/takeover` does: it goes to `handoff` and the bot falls silent until a handback", false, "reason", "`takeover: \"the customer asked for a person\"`",
		text("reason", "why"), text("operator", "who (default scenario)")),
	step("handback", "an operator hands a dialog that is with a human back to the bot: it resumes in its state, or enters `state`; messages held meanwhile are not replayed", false, "", "`handback: true`",
		text("state", "a state to enter"), text("reason", "why"), text("operator", "who (default scenario)")),
	step("message", "an operator writes to the customer through the outbox (a `send` on the dialog's channel; on WhatsApp a text only inside the 24-hour window: outside it the step is refused, as the admin API refuses it)", false, "text", "`message: \"Здравствуйте, это Анна\"`",
		text("text", "the text"), engine.Field{Name: "template", Type: engine.TAny, Doc: "a WhatsApp template `{name, language, params}` instead of a text"}, text("operator", "who (default scenario)")),
	step("goto", "an operator moves an active dialog to a state, entering it", false, "state", "`goto: ask_problem`",
		text("state", "the state"), text("reason", "why"), text("operator", "who (default scenario)")),
	step("close", "an operator ends the dialog: its timers are cancelled and its keys released", false, "status", "`close: abandoned`",
		text("status", "finished or abandoned", "finished", "abandoned"), text("reason", "why"), text("operator", "who (default scenario)")),
	step("retry", "an operator retries the dialog's last failed or dead action of a kind, as `POST /api/v1/outbox/{id}/retry` does: the same action again, with a fresh budget of attempts, answered by the mocks as they are now", false, "kind", "`retry: okdesk.create_issue`",
		engine.Field{Name: "kind", Type: engine.TString, Required: true, Doc: "the action's kind"}),
}

// stepSpec returns the spec of a step kind.
func stepSpec(kind string) (StepSpec, bool) {
	for _, s := range StepSpecs {
		if s.Name == kind {
			return s, true
		}
	}
	return StepSpec{}, false
}

// StepKinds lists every step kind, for documentation and error hints.
func StepKinds() []string {
	out := make([]string, len(StepSpecs))
	for i, s := range StepSpecs {
		out[i] = s.Name
	}
	return out
}

// ExpectSpec is what a step may expect.
var ExpectSpec = engine.Object{Name: "expect", Doc: "What a step expects; a key that is absent is not checked.", Fields: []engine.Field{
	{Name: "sent", Type: engine.TAny, Doc: "the messages delivered in this step, all of them, in order. An item is a text, or `{text, buttons: [titles], list: [row titles], template: NAME, params: [...], file: NAME, via, from}` (`file`: the name of the file sent, `text` then its caption; `from`: the WhatsApp business number it left from). A message that went as a template matches only an item with `template`. `sent: []` means nothing was sent."},
	{Name: "actions", Type: engine.TAny, Doc: "every outbound action except `send` in this step, in order: `- okdesk.create_issue: { title: \"~Анна\" }` (parameters as a subset) or just `- okdesk.comment`. `actions: []`: none."},
	{Name: "failed", Type: engine.TAny, Doc: "every action that failed in this step, in order: `- send: window_closed`, `- okdesk.create_issue` (any code)."},
	{Name: "logged", Type: engine.TAny, Doc: "the `log` lines written in this step, in order."},
	{Name: "state", Type: engine.TString, Doc: "the dialog's state after the step."},
	{Name: "vars", Type: engine.TAny, Doc: "the dialog's variables, as a subset."},
	{Name: "status", Type: engine.TString, Enum: statuses, Doc: "the dialog's status after the step"},
	{Name: "finished", Type: engine.TBool, Doc: "`finished: true` is short for `status: finished`."},
	{Name: "keys", Type: engine.TAny, Doc: "correlation keys bound to the dialog (subset), e.g. `[\"okdesk:issue:1542\"]`."},
	{Name: "started", Type: engine.TBool, Doc: "whether the step's event started a new dialog."},
	{Name: "outcome", Type: engine.TString, Enum: outcomeNames(), Doc: "what became of the step's own event: `handled`, `ignored` (the state's `ignore`, an `action.done` nobody waits for, a stale timer), `unhandled` (recorded as unhandled), `unrouted`, `failed` (runtime error), `held` (kept in the history while a human has the dialog; action results and timers are never held), `duplicate`. Inbound steps, and `complete` (its first result event)."},
	{Name: "unhandled", Type: engine.TBool, Doc: "short for `outcome: unhandled`."},
	{Name: "ignored", Type: engine.TBool, Doc: "short for `outcome: ignored`."},
	{Name: "unrouted", Type: engine.TBool, Doc: "short for `outcome: unrouted`."},
	{Name: "error", Type: engine.TString, Doc: "a runtime error (a guard or template failing) happened in the step and its text matches. A runtime error that no `error` expects fails the step."},
}}

// SentSpec is one expected message of `sent`; FailSpec a mocked failure;
// EventContactSpec the contact of an `event` step.
var (
	SentSpec = engine.Object{Name: "a sent message", Fields: []engine.Field{
		{Name: "text"}, {Name: "buttons"}, {Name: "list"}, {Name: "template"}, {Name: "params"}, {Name: "file"},
		{Name: "via", Enum: []string{"text", "buttons", "list", "template", "fallback_template"}},
		{Name: "from"},
	}}
	FailSpec         = engine.Object{Name: "fail", Fields: []engine.Field{{Name: "code"}, {Name: "message"}, {Name: "status"}}}
	EventContactSpec = engine.Object{Name: "event.contact", Fields: []engine.Field{{Name: "channel"}, {Name: "id"}, {Name: "name"}, {Name: "phone"}}}
)

func outcomeNames() []string {
	out := make([]string, len(sim.Outcomes))
	for i, o := range sim.Outcomes {
		out[i] = string(o)
	}
	return out
}

// Markers of the generated parts of docs/scenarios.md.
const (
	DocKeysMark   = "scenario keys"
	DocStepsMark  = "steps"
	DocExpectMark = "expectations"
)

// ScenarioDocs renders the generated parts of docs/scenarios.md by marker.
func ScenarioDocs() map[string]string {
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	var keys strings.Builder
	keys.WriteString("| key | where | meaning |\n|---|---|---|\n")
	inScenario := map[string]bool{}
	for _, f := range ScenarioSpec.Fields {
		inScenario[f.Name] = true
	}
	seen := map[string]bool{}
	for _, o := range []engine.Object{FileSpec, ScenarioSpec} {
		for _, f := range o.Fields {
			if seen[f.Name] {
				continue
			}
			seen[f.Name] = true
			where := "file"
			switch {
			case o.Name == "scenario":
				where = "scenario"
			case inScenario[f.Name]:
				where = "file, scenario"
			}
			doc := f.Doc
			if f.Required {
				doc += " (required)"
			}
			fmt.Fprintf(&keys, "| `%s` | %s | %s |\n", f.Name, where, cell(doc))
		}
	}
	var steps strings.Builder
	steps.WriteString("| step | short form | long form | event |\n|---|---|---|---|\n")
	for _, s := range StepSpecs {
		short := "—"
		if s.ShortExample != "" {
			short = s.ShortExample
		}
		long := "—"
		if s.Keyed {
			long = s.Form
		} else if len(s.Fields) > 0 {
			names := make([]string, len(s.Fields))
			for i, fl := range s.Fields {
				names[i] = fl.Name
				switch {
				case len(fl.Enum) > 0 && len(fl.Enum) <= 3:
					names[i] += ": " + strings.Join(fl.Enum, "|")
				case fl.Type == engine.TObject && strings.HasPrefix(fl.Doc, "`{"):
					names[i] += ": " + strings.Trim(fl.Doc, "`")
				}
			}
			long = "`{" + strings.Join(names, ", ") + "}`"
		}
		fmt.Fprintf(&steps, "| `%s` | %s | %s | %s |\n", s.Name, cell(short), cell(long), cell(s.Doc))
	}
	var expect strings.Builder
	expect.WriteString("| key | checks |\n|---|---|\n")
	for _, fl := range ExpectSpec.Fields {
		doc := fl.Doc
		if fl.Name == "status" {
			doc = "`" + strings.Join(fl.Enum, "`, `") + "`; " + doc + "."
		}
		fmt.Fprintf(&expect, "| `%s` | %s |\n", fl.Name, cell(doc))
	}
	return map[string]string{DocKeysMark: keys.String(), DocStepsMark: steps.String(), DocExpectMark: expect.String()}
}
