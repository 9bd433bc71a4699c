package engine

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Severity of a diagnostic.
type Severity string

// Severities.
const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Diagnostic is one problem found in a flow file, with its exact place.
type Diagnostic struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
	// EndLine and EndCol end the range the problem covers (the column just after
	// it), so an editor can underline it.
	EndLine  int      `json:"end_line"`
	EndCol   int      `json:"end_col"`
	Severity Severity `json:"severity"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
	Hint     string   `json:"hint,omitempty"`
}

// Range returns where d starts and ends; a diagnostic made without an end (by
// code outside the front end) covers one character.
func (d Diagnostic) Range() (start, end Pos) {
	start = Pos{Line: d.Line, Col: d.Col}
	end = Pos{Line: d.EndLine, Col: d.EndCol}
	if end.Line == 0 {
		end = Pos{Line: d.Line, Col: d.Col + 1}
	}
	return start, end
}

// MarshalJSON writes d with its range always complete, so an editor can
// underline every diagnostic.
func (d Diagnostic) MarshalJSON() ([]byte, error) {
	type plain Diagnostic
	_, end := d.Range()
	d.EndLine, d.EndCol = end.Line, end.Col
	return json.Marshal(plain(d))
}

// String formats d as `file:line:col: severity: CODE message`.
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s %s", d.File, d.Line, d.Col, d.Severity, d.Code, d.Message)
}

// Diagnostics is a list of problems.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == SevError {
			return true
		}
	}
	return false
}

// Sort orders diagnostics by file, line, column, then code.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Code < b.Code
	})
}

// Error makes Diagnostics usable as an error: the first error and a count.
func (ds Diagnostics) Error() string {
	var errs []string
	for _, d := range ds {
		if d.Severity == SevError {
			errs = append(errs, d.String())
		}
	}
	switch len(errs) {
	case 0:
		return "no errors"
	case 1:
		return errs[0]
	}
	return fmt.Sprintf("%s (and %d more errors)", errs[0], len(errs)-1)
}

// Code describes one diagnostic code: its severity and the hint printed with it.
type Code struct {
	Name     string
	Severity Severity
	Summary  string // what the code means (documentation)
	Hint     string // default one-line hint
}

// Diagnostic codes. The list is closed: every code is documented in docs/flows.md,
// and a test checks that the two agree.
const (
	CodeYAMLSyntax        = "yaml-syntax"
	CodeNotUTF8           = "not-utf8"
	CodeInvisibleChar     = "invisible-char"
	CodeSplitValue        = "split-value"
	CodeReadError         = "read-error"
	CodeNoFlows           = "no-flows"
	CodeDuplicateKey      = "duplicate-key"
	CodeUnknownKey        = "unknown-key"
	CodeWrongType         = "wrong-type"
	CodeMissingKey        = "missing-key"
	CodeBadName           = "bad-name"
	CodeDuplicateFlow     = "duplicate-flow"
	CodeMissingInitial    = "missing-initial"
	CodeUnknownState      = "unknown-state"
	CodeUnreachableState  = "unreachable-state"
	CodeNoWayOut          = "no-way-out"
	CodeEventlessLoop     = "eventless-loop"
	CodeUnknownEvent      = "unknown-event"
	CodeUnknownAction     = "unknown-action"
	CodeUnknownParam      = "unknown-param"
	CodeMissingParam      = "missing-param"
	CodeBadDuration       = "bad-duration"
	CodeExprSyntax        = "expr-syntax"
	CodeExprType          = "expr-type"
	CodeUnknownVar        = "unknown-var"
	CodeBadRegex          = "bad-regex"
	CodeUnknownTimezone   = "unknown-timezone"
	CodeUnknownName       = "unknown-name"
	CodeBadTemplate       = "bad-template"
	CodeWhatsAppLimit     = "whatsapp-limit"
	CodeTelegramLimit     = "telegram-limit"
	CodeTemplateOverLimit = "template-over-limit"
	CodeDuplicateID       = "duplicate-id"
	CodeUnreachableBranch = "unreachable-branch"
	CodeFinalWithExits    = "final-with-exits"
	CodeBadValue          = "bad-value"
	CodeStrandedDialogs   = "stranded-dialogs"
	CodeReloadFailed      = "reload-failed"
	CodeStartShadowed     = "start-shadowed"
	CodeAlongsideReplies  = "alongside-replies"
)

// Codes is the documented list of every diagnostic code.
var Codes = []Code{
	{CodeYAMLSyntax, SevError, "The file is not valid YAML.", "fix the YAML syntax at this position (indentation, quotes, colons)"},
	{CodeNotUTF8, SevError, "The file is not UTF-8 (e.g. saved as Windows-1251 or UTF-16).", "save the file as UTF-8"},
	{CodeInvisibleChar, SevError, "An invisible character (no-break space, zero-width space, …) stands in a line's indentation or in a key, where YAML reads it as text.", "replace it with an ordinary space, or delete it"},
	{CodeSplitValue, SevError, "Inside `{ … }` or `[ … ]` a comma ends a value, so an unquoted expression such as `truncate(event.text, 20)` was cut in two.", "quote the expression"},
	{CodeReadError, SevError, "The file or folder could not be read.", "check the path and its permissions"},
	{CodeNoFlows, SevWarning, "A folder holds no flow files (*.yaml, *.yml).", "add a flow file or point FIXIT_FLOWS at the right folder"},
	{CodeDuplicateKey, SevError, "A mapping has the same key twice; YAML would silently keep only one.", "remove or rename one of the two keys"},
	{CodeUnknownKey, SevError, "A key that the flow language does not define.", "check the spelling against the flow reference"},
	{CodeWrongType, SevError, "A value has the wrong YAML type (e.g. a list where a mapping is expected).", "use the type the flow reference gives for this key"},
	{CodeMissingKey, SevError, "A required key is absent.", "add the key"},
	{CodeBadName, SevError, "A flow, state or variable name is not an identifier.", "use letters, digits and underscores, starting with a letter"},
	{CodeDuplicateFlow, SevError, "Two files declare the same flow name.", "give each flow a unique `flow:` name"},
	{CodeMissingInitial, SevError, "The flow has no `initial` state.", "add `initial: <state>` naming the state new dialogs start in"},
	{CodeUnknownState, SevError, "A `goto`, `after` or `initial` names a state that does not exist.", "use one of the states declared under `states`"},
	{CodeUnreachableState, SevWarning, "No path from the initial state leads to this state.", "add a `goto` to it or remove it"},
	{CodeNoWayOut, SevError, "A state that is not final has no transition, timer or handler: a dialog entering it would be stuck forever.", "add an `on` handler, an `after` timer, a `goto`, or mark it `final: true`"},
	{CodeEventlessLoop, SevError, "Unguarded `always` branches form a cycle: the dialog would loop without waiting for an event.", "add a `when` guard or make one branch wait for an event"},
	{CodeUnknownEvent, SevError, "An event type that no connector produces.", "use a type from the event reference (waba.message, okdesk.new_ticket_status, …)"},
	{CodeUnknownAction, SevError, "An action that the flow language does not define.", "use one of send, okdesk.*, onec.read, http, bind, log, handoff"},
	{CodeUnknownParam, SevError, "An action parameter that the action does not take.", "check the action's parameters in the flow reference"},
	{CodeMissingParam, SevError, "A required action parameter is absent.", "add the parameter"},
	{CodeBadDuration, SevError, "A duration that cannot be parsed or is not positive.", "write durations like 90s, 15m, 24h or 1h30m"},
	{CodeExprSyntax, SevError, "An expression does not parse.", "check the expression syntax (expr-lang)"},
	{CodeExprType, SevError, "An expression does not type-check (wrong argument, mismatched types, guard not bool).", "check the names and types against the expression environment"},
	{CodeUnknownName, SevError, "An expression names a field, function or name that does not exist (e.g. event.txt, sqush(…), text).", "check the spelling against the expression environment and the helpers"},
	{CodeBadRegex, SevError, "A regular expression written in a flow (match, find, matches) does not compile.", "regular expressions use RE2 syntax"},
	{CodeUnknownTimezone, SevError, "A time zone that does not exist (in in_zone, parse_time or the flow's timezone).", "use an IANA zone name such as Europe/Moscow or UTC"},
	{CodeUnknownVar, SevError, "An expression or `set` names a variable not declared under `vars`.", "declare it under `vars` with a default value"},
	{CodeBadTemplate, SevError, "A `${…}` template is not closed.", "close the template with `}` or write `$${` for a literal `${`"},
	{CodeWhatsAppLimit, SevError, "A literal value exceeds what WhatsApp accepts in one message (see Channel limits: 1,024 characters of text with buttons, 3 buttons, 20-character titles, 10 rows, …).", "shorten the value, or use fewer buttons or rows"},
	{CodeTelegramLimit, SevError, "A literal value exceeds what Telegram accepts (4,096 characters of text, 64 bytes of a button's id, 200 characters of a callback answer).", "shorten the value"},
	{CodeTemplateOverLimit, SevWarning, "The fixed part of a template alone is longer than the channel accepts; what is sent is cut to the limit (ending with …) and a warning logged.", "shorten the fixed text"},
	{CodeDuplicateID, SevError, "Two buttons or rows of one message have the same id, so a reply cannot tell them apart.", "give each button or row its own id"},
	{CodeUnreachableBranch, SevWarning, "A branch follows an unguarded branch of the same handler and can never run.", "move the unguarded (catch-all) branch last"},
	{CodeFinalWithExits, SevWarning, "A final state has handlers, timers or gotos that will never run.", "remove them or make the state non-final"},
	{CodeBadValue, SevError, "A value is outside the allowed set (e.g. a final status).", "use one of the values the flow reference lists"},
	{CodeStrandedDialogs, SevError, "A reload would move live dialogs (the flow declares `migrate`) to a version without the state they wait in, or to one that changes `alongside` (their keys are held in the other scope); the reload is refused.", "map the state under `migrate:` to a state of the new version, or keep the state"},
	{CodeStartShadowed, SevWarning, "Two ordinary flows start on the same event type and the one tried first (higher `priority`, then file name) has no `when`: the other never starts on that type.", "give the first flow a `start.when` that leaves the other's events to it, or make one of them `alongside: true`"},
	{CodeAlongsideReplies, SevWarning, "An alongside flow sends to the customer on a message type an ordinary flow takes too: one message would be answered by both dialogs.", "let only one of the flows reply, or start the alongside flow on another event"},
	{CodeReloadFailed, SevError, "The flows are valid but could not be put in service: the database did not answer while their versions were stored or live dialogs moved. The old flows keep serving.", "check the database, then reload again"},
}

var codeIndex = func() map[string]Code {
	m := make(map[string]Code, len(Codes))
	for _, c := range Codes {
		m[c.Name] = c
	}
	return m
}()

// EditDistance is the number of edits — inserting, deleting or changing a
// character, or swapping two neighbours — that turn a into b.
func EditDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// Three rows of the optimal-string-alignment matrix.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
