package sim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"gopkg.in/yaml.v3"

	"unicode/utf8"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/event"
)

// ScenarioFile is a parsed `*_test.yaml` file.
type ScenarioFile struct {
	Name      string
	Scenarios []*Scenario
}

// Scenario is one named sequence of steps run in a fresh world.
type Scenario struct {
	File     string
	Pos      engine.Pos
	Name     string
	Start    time.Time
	Contact  WhatsAppContact
	Telegram TelegramChat
	Env      map[string]any
	Steps    []*Step
}

// Step is one input (an inbound event, the clock moving, a mock, an operator's
// action) and what is expected after it.
type Step struct {
	Pos    engine.Pos
	Kind   string // the step's key, e.g. "whatsapp", "advance", "okdesk.status"
	Text   string // the step as written, on one line
	in     input
	Expect *Expect
}

// Expect is what a step expects. Nil fields are not checked.
type Expect struct {
	Pos     engine.Pos
	Sent    []msgMatch
	HasSent bool
	Actions []actionMatch
	HasActs bool
	Failed  []failMatch
	HasFail bool
	Logged  []textMatch
	HasLog  bool
	State   *string
	Vars    map[string]any
	VarKeys []string
	Status  *string
	Outcome *Outcome
	Error   *textMatch
	Started *bool
	Keys    []string
}

type msgMatch struct {
	text       *textMatch
	buttons    []textMatch
	hasButtons bool
	rows       []textMatch
	hasRows    bool
	template   *textMatch
	params     []any
	hasParams  bool
	via        string
}

type actionMatch struct {
	kind   string
	params map[string]any // nil: any parameters
}

type failMatch struct {
	kind string
	code string // "": any code
}

// Step kinds. Inbound steps make one event; the others act on the world.
var inboundKinds = []string{"whatsapp", "button", "list", "photo", "document", "media", "location", "telegram",
	"callback", "okdesk.status", "okdesk.comment", "onec.payment", "event"}

var otherKinds = []string{"advance", "mock", "complete", "handback"}

// StepKinds lists every step kind, for documentation and error hints.
func StepKinds() []string { return append(slices.Clone(inboundKinds), otherKinds...) }

var expectKeys = []string{"sent", "actions", "failed", "logged", "state", "vars", "status", "finished", "outcome",
	"unhandled", "ignored", "unrouted", "error", "started", "keys"}

var statuses = func() []string {
	out := make([]string, len(dialog.Statuses))
	for i, s := range dialog.Statuses {
		out[i] = string(s)
	}
	return out
}()

// ParseScenarios parses a scenario file. It reports every problem it finds, each
// with its line and column, and returns the scenarios only when there is none.
func ParseScenarios(name string, data []byte) (*ScenarioFile, engine.Diagnostics) {
	p := &parser{file: name}
	out := p.file0(data)
	p.diags.Sort()
	if p.diags.HasErrors() {
		return nil, p.diags
	}
	return out, p.diags
}

type parser struct {
	file  string
	diags engine.Diagnostics
}

func (p *parser) add(n *yaml.Node, code, hint, format string, args ...any) {
	pos := posOf(n)
	p.diags = append(p.diags, engine.Diagnostic{File: p.file, Line: pos.Line, Col: pos.Col, Severity: engine.SevError,
		Code: code, Message: fmt.Sprintf(format, args...), Hint: hint})
}

func posOf(n *yaml.Node) engine.Pos {
	if n == nil || n.Line < 1 {
		return engine.Pos{Line: 1, Col: 1}
	}
	return engine.Pos{Line: n.Line, Col: max(n.Column, 1)}
}

var yamlLineRe = regexp.MustCompile(`line (\d+)(?:, column (\d+))?: (.*)`)

type pair struct{ key, val *yaml.Node }

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 32; i++ {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return "a scalar"
	}
	return "nothing"
}

// pairs returns a mapping's entries, reporting duplicate keys.
func (p *parser) pairs(n *yaml.Node, what string) []pair {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if n != nil {
			p.add(n, engine.CodeWrongType, "", "%s must be a mapping, not %s", what, kindName(n))
		}
		return nil
	}
	var out []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k == nil || v == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.add(k, engine.CodeWrongType, "", "a key in %s must be a scalar, not %s", what, kindName(k))
			continue
		}
		if seen[k.Value] {
			p.add(k, engine.CodeDuplicateKey, "remove or rename one of the two keys", "duplicate key %q in %s", k.Value, what)
			continue
		}
		seen[k.Value] = true
		out = append(out, pair{k, v})
	}
	return out
}

func (p *parser) unknown(k *yaml.Node, what string, known []string) {
	hint := "one of: " + strings.Join(known, ", ")
	if s := closest(k.Value, known); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	p.add(k, engine.CodeUnknownKey, hint, "unknown key %q in %s", k.Value, what)
}

func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.add(n, engine.CodeWrongType, "", "%s must be a scalar, not %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	p.add(n, engine.CodeWrongType, "", "%s must be true or false", what)
	return false, false
}

// value decodes a node into the JSON data model (numbers as float64).
func (p *parser) value(n *yaml.Node, what string) (any, bool) {
	var v any
	if err := n.Decode(&v); err != nil {
		p.add(n, engine.CodeWrongType, "", "%s: %v", what, err)
		return nil, false
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		p.add(n, engine.CodeWrongType, "", "%s: %v", what, err)
		return nil, false
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		p.add(n, engine.CodeWrongType, "", "%s: %v", what, err)
		return nil, false
	}
	return out, true
}

// jsonable turns YAML's map[string]any/map[any]any trees into JSON-encodable ones.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case time.Time:
		return x.Format(time.RFC3339Nano)
	}
	return v
}

func (p *parser) file0(data []byte) *ScenarioFile {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, col, msg := 1, 1, err.Error()
		if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			if m[2] != "" {
				col, _ = strconv.Atoi(m[2])
			}
			msg = m[3]
		}
		p.diags = append(p.diags, engine.Diagnostic{File: p.file, Line: line, Col: col, Severity: engine.SevError,
			Code: engine.CodeYAMLSyntax, Message: strings.TrimPrefix(msg, "yaml: "), Hint: "fix the YAML syntax at this position (indentation, quotes, colons)"})
		return nil
	}
	out := &ScenarioFile{Name: p.file}
	if len(doc.Content) == 0 {
		p.add(&doc, engine.CodeMissingKey, "add `scenarios:` with a list of scenarios", "the file is empty")
		return out
	}
	root := resolve(doc.Content[0])
	defaults := Scenario{File: p.file, Start: DefaultStart(), Contact: WhatsAppContact{Phone: "+79161234567", Name: "Анна"},
		Telegram: TelegramChat{ChatID: "512345678", Name: "Анна"}}
	var list *yaml.Node
	for _, kv := range p.pairs(root, "the scenario file") {
		switch kv.key.Value {
		case "scenarios":
			list = kv.val
		case "start", "contact", "telegram", "env":
			p.setting(&defaults, kv)
		default:
			p.unknown(kv.key, "the scenario file", []string{"scenarios", "start", "contact", "telegram", "env"})
		}
	}
	if list == nil {
		if root.Kind == yaml.MappingNode {
			p.add(root, engine.CodeMissingKey, "add `scenarios:` with a list of scenarios", "the file has no \"scenarios\"")
		}
		return out
	}
	if list.Kind != yaml.SequenceNode {
		p.add(list, engine.CodeWrongType, "", "scenarios must be a list, not %s", kindName(list))
		return out
	}
	names := map[string]bool{}
	for _, c := range list.Content {
		if sc := p.scenario(resolve(c), defaults); sc != nil {
			if names[sc.Name] {
				p.add(c, engine.CodeDuplicateKey, "give each scenario its own name", "scenario name %q is used twice", sc.Name)
			}
			names[sc.Name] = true
			out.Scenarios = append(out.Scenarios, sc)
		}
	}
	return out
}

// setting reads a key a scenario and the file's top level share.
func (p *parser) setting(sc *Scenario, kv pair) {
	switch kv.key.Value {
	case "start":
		s, ok := p.scalar(kv.val, "start")
		if !ok {
			return
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			p.add(kv.val, engine.CodeBadValue, "write an RFC 3339 time, e.g. 2026-11-29T10:00:00+03:00", "start %q is not an RFC 3339 time", s)
			return
		}
		sc.Start = t
	case "contact":
		for _, f := range p.pairs(kv.val, "contact") {
			v, ok := p.scalar(f.val, "contact."+f.key.Value)
			switch {
			case !ok:
			case f.key.Value == "phone":
				if event.NormalizePhone(v) == "" {
					p.add(f.val, engine.CodeBadValue, "write the phone with its country code, e.g. +79161234567", "%q is not a phone number", v)
				}
				sc.Contact.Phone = v
			case f.key.Value == "name":
				sc.Contact.Name = v
			default:
				p.unknown(f.key, "contact", []string{"phone", "name"})
			}
		}
	case "telegram":
		for _, f := range p.pairs(kv.val, "telegram") {
			v, ok := p.scalar(f.val, "telegram."+f.key.Value)
			switch {
			case !ok:
			case f.key.Value == "chat_id":
				sc.Telegram.ChatID = v
			case f.key.Value == "name":
				sc.Telegram.Name = v
			default:
				p.unknown(f.key, "telegram", []string{"chat_id", "name"})
			}
		}
	case "env":
		env := map[string]any{}
		for k, v := range sc.Env {
			env[k] = v
		}
		for _, f := range p.pairs(kv.val, "env") {
			if !strings.HasPrefix(f.key.Value, engine.FlowEnvPrefix) {
				p.add(f.key, engine.CodeBadValue, "flows see only FLOW_* variables", "env variable %q does not start with %s", f.key.Value, engine.FlowEnvPrefix)
				continue
			}
			if v, ok := p.scalar(f.val, "env."+f.key.Value); ok && v != "" {
				env[f.key.Value] = v
			}
		}
		sc.Env = env
	}
}

func (p *parser) scenario(n *yaml.Node, defaults Scenario) *Scenario {
	if n.Kind != yaml.MappingNode {
		p.add(n, engine.CodeWrongType, "start each scenario with `- name: …`", "a scenario must be a mapping, not %s", kindName(n))
		return nil
	}
	sc := defaults
	sc.Pos = posOf(n)
	sc.Steps = nil
	var steps *yaml.Node
	for _, kv := range p.pairs(n, "a scenario") {
		switch kv.key.Value {
		case "name":
			sc.Name, _ = p.scalar(kv.val, "name")
		case "steps":
			steps = kv.val
		case "start", "contact", "telegram", "env":
			p.setting(&sc, kv)
		default:
			p.unknown(kv.key, "a scenario", []string{"name", "steps", "start", "contact", "telegram", "env"})
		}
	}
	if sc.Name == "" {
		p.add(n, engine.CodeMissingKey, "add `name: …` saying what the scenario shows", "the scenario has no name")
	}
	if steps == nil {
		p.add(n, engine.CodeMissingKey, "add `steps:` with a list of steps", "the scenario has no steps")
		return &sc
	}
	if steps.Kind != yaml.SequenceNode {
		p.add(steps, engine.CodeWrongType, "", "steps must be a list, not %s", kindName(steps))
		return &sc
	}
	for _, c := range steps.Content {
		if st := p.step(resolve(c), &sc); st != nil {
			sc.Steps = append(sc.Steps, st)
		}
	}
	return &sc
}

func (p *parser) step(n *yaml.Node, sc *Scenario) *Step {
	if n.Kind != yaml.MappingNode {
		p.add(n, engine.CodeWrongType, "write a step as `- whatsapp: \"text\"`, `- advance: 25h`, …", "a step must be a mapping, not %s", kindName(n))
		return nil
	}
	st := &Step{Pos: posOf(n)}
	var expect *yaml.Node
	var kind pair
	for _, kv := range p.pairs(n, "a step") {
		switch {
		case kv.key.Value == "expect":
			expect = kv.val
		case slices.Contains(inboundKinds, kv.key.Value) || slices.Contains(otherKinds, kv.key.Value):
			if kind.key != nil {
				p.add(kv.key, engine.CodeWrongType, "split it into two steps", "a step has one input; this one has %q and %q", kind.key.Value, kv.key.Value)
				continue
			}
			kind = kv
		default:
			p.unknown(kv.key, "a step", append(StepKinds(), "expect"))
		}
	}
	if kind.key == nil {
		p.add(n, engine.CodeMissingKey, "start the step with one of: "+strings.Join(StepKinds(), ", "), "the step has no input")
		return nil
	}
	st.Kind, st.Pos = kind.key.Value, posOf(kind.key)
	st.Text = stepText(kind)
	st.in = p.input(kind.key.Value, kind.val, sc)
	if expect != nil {
		// A complete step delivers one event too: its outcome may be checked.
		st.Expect = p.expect(expect, slices.Contains(inboundKinds, st.Kind) || st.Kind == "complete")
	}
	if st.in == nil {
		return nil
	}
	return st
}

// stepText renders a step's input on one line, as written.
func stepText(kv pair) string {
	var v any
	if err := kv.val.Decode(&v); err != nil {
		return kv.key.Value
	}
	if s, ok := v.(string); ok && kv.val.Kind == yaml.ScalarNode {
		if kv.val.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || strings.ContainsAny(s, ":#\n") {
			return kv.key.Value + ": " + quote(s)
		}
		return kv.key.Value + ": " + s
	}
	return kv.key.Value + ": " + show(jsonable(v))
}

// fields reads a step's mapping argument, or its scalar shorthand into short.
func (p *parser) fields(n *yaml.Node, what, short string, known []string) (map[string]*yaml.Node, bool) {
	out := map[string]*yaml.Node{}
	if n.Kind == yaml.ScalarNode && short != "" {
		if n.Tag == "!!null" {
			p.add(n, engine.CodeWrongType, "", "%s needs a value", what)
			return nil, false
		}
		out[short] = n
		return out, true
	}
	if n.Kind != yaml.MappingNode {
		want := "a mapping"
		if short != "" {
			want = "a " + short + " or a mapping"
		}
		p.add(n, engine.CodeWrongType, "", "%s takes %s, not %s", what, want, kindName(n))
		return nil, false
	}
	ok := true
	for _, kv := range p.pairs(n, what) {
		if !slices.Contains(known, kv.key.Value) {
			p.unknown(kv.key, what, known)
			ok = false
			continue
		}
		out[kv.key.Value] = kv.val
	}
	return out, ok
}

func (p *parser) str(f map[string]*yaml.Node, key, what string) string {
	n := f[key]
	if n == nil {
		return ""
	}
	s, _ := p.scalar(n, what+"."+key)
	return s
}

func (p *parser) num(f map[string]*yaml.Node, key, what string) float64 {
	n := f[key]
	if n == nil {
		return 0
	}
	s, ok := p.scalar(n, what+"."+key)
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		p.add(n, engine.CodeWrongType, "", "%s.%s must be a number, not %q", what, key, s)
	}
	return v
}

func (p *parser) from(f map[string]*yaml.Node, what string, sc *Scenario) WhatsAppContact {
	c := sc.Contact
	if n := f["from"]; n != nil {
		if s, ok := p.scalar(n, what+".from"); ok {
			if event.NormalizePhone(s) == "" {
				p.add(n, engine.CodeBadValue, "write the phone with its country code, e.g. +79161234567", "%q is not a phone number", s)
			}
			c = WhatsAppContact{Phone: s}
		}
	}
	if n := f["name"]; n != nil {
		c.Name, _ = p.scalar(n, what+".name")
	}
	return c
}

func (p *parser) chat(f map[string]*yaml.Node, what string, sc *Scenario) TelegramChat {
	c := sc.Telegram
	if n := f["chat"]; n != nil {
		if s, ok := p.scalar(n, what+".chat"); ok {
			c = TelegramChat{ChatID: s}
		}
	}
	if n := f["name"]; n != nil {
		c.Name, _ = p.scalar(n, what+".name")
	}
	return c
}

func (p *parser) input(kind string, n *yaml.Node, sc *Scenario) input {
	switch kind {
	case "whatsapp":
		f, ok := p.fields(n, kind, "text", []string{"text", "from", "name"})
		if !ok {
			return nil
		}
		return &waText{from: p.from(f, kind, sc), text: p.str(f, "text", kind)}
	case "button", "list":
		f, ok := p.fields(n, kind, "id", []string{"id", "title", "description", "from", "name"})
		if !ok {
			return nil
		}
		if f["id"] == nil && f["title"] == nil {
			p.add(n, engine.CodeMissingKey, "give the id or the title of the "+kind+" choice", "%s needs an id or a title", kind)
			return nil
		}
		return &waChoice{list: kind == "list", from: p.from(f, kind, sc), id: p.str(f, "id", kind),
			title: p.str(f, "title", kind), desc: p.str(f, "description", kind)}
	case "photo", "document", "media":
		known := []string{"caption", "filename", "from", "name"}
		if kind == "media" {
			known = append(known, "kind")
		}
		short := "caption"
		if kind == "media" {
			short = ""
		}
		f, ok := p.fields(n, kind, short, known)
		if !ok {
			return nil
		}
		mk := map[string]string{"photo": "image", "document": "document"}[kind]
		if kind == "media" {
			mk = p.str(f, "kind", kind)
			if !slices.Contains(mediaKinds, mk) {
				p.add(orNode(f["kind"], n), engine.CodeBadValue, "one of: "+strings.Join(mediaKinds, ", "), "media.kind %q is not a media kind", mk)
				return nil
			}
		}
		return &waMedia{from: p.from(f, kind, sc), kind: mk, caption: p.str(f, "caption", kind), filename: p.str(f, "filename", kind)}
	case "location":
		f, ok := p.fields(n, kind, "", []string{"latitude", "longitude", "name", "address", "from"})
		if !ok {
			return nil
		}
		c := p.from(map[string]*yaml.Node{"from": f["from"]}, kind, sc)
		if f["from"] == nil {
			c = sc.Contact
		}
		return &waLocation{from: c, lat: p.num(f, "latitude", kind), lon: p.num(f, "longitude", kind),
			name: p.str(f, "name", kind), address: p.str(f, "address", kind)}
	case "telegram":
		f, ok := p.fields(n, kind, "text", []string{"text", "chat", "name"})
		if !ok {
			return nil
		}
		return &tgText{chat: p.chat(f, kind, sc), text: p.str(f, "text", kind)}
	case "callback":
		f, ok := p.fields(n, kind, "data", []string{"data", "chat", "name"})
		if !ok {
			return nil
		}
		return &tgCallback{chat: p.chat(f, kind, sc), data: p.str(f, "data", kind)}
	case "okdesk.status":
		f, ok := p.fields(n, kind, "status", []string{"status", "old", "issue", "phone"})
		if !ok {
			return nil
		}
		if f["status"] == nil {
			p.add(n, engine.CodeMissingKey, "add `status: completed`", "okdesk.status needs a status")
			return nil
		}
		return &okStatus{issue: p.str(f, "issue", kind), status: p.str(f, "status", kind), old: p.str(f, "old", kind), phone: p.str(f, "phone", kind)}
	case "okdesk.comment":
		f, ok := p.fields(n, kind, "text", []string{"text", "public", "author", "issue", "phone"})
		if !ok {
			return nil
		}
		c := &okComment{issue: p.str(f, "issue", kind), text: p.str(f, "text", kind), public: true, author: "employee", phone: p.str(f, "phone", kind)}
		if b := f["public"]; b != nil {
			c.public, _ = p.boolean(b, kind+".public")
		}
		if a := f["author"]; a != nil {
			c.author, _ = p.scalar(a, kind+".author")
			if c.author != "employee" && c.author != "contact" {
				p.add(a, engine.CodeBadValue, "employee or contact", "okdesk.comment.author %q is not employee or contact", c.author)
			}
		}
		return c
	case "onec.payment":
		f, ok := p.fields(n, kind, "status", []string{"status", "okdesk_issue_id", "phone", "invoice_id", "amount", "id"})
		if !ok {
			return nil
		}
		pay := &onecPayment{p: Payment{ID: p.str(f, "id", kind), Status: p.str(f, "status", kind), InvoiceID: p.str(f, "invoice_id", kind),
			OkdeskIssueID: p.str(f, "okdesk_issue_id", kind), Phone: p.str(f, "phone", kind), Amount: p.num(f, "amount", kind)}}
		if pay.p.Status == "" {
			pay.p.Status = "paid"
		}
		pay.auto = f["okdesk_issue_id"] == nil && f["phone"] == nil
		return pay
	case "event":
		return p.rawEvent(n)
	case "advance":
		s, ok := p.scalar(n, "advance")
		if !ok {
			return nil
		}
		d, err := parseDuration(s)
		if err != nil {
			p.add(n, engine.CodeBadDuration, "write durations like 90s, 15m, 25h, 2d or 1h30m", "advance: %v", err)
			return nil
		}
		return &advance{d: d}
	case "mock":
		return p.mock(n)
	case "complete":
		return p.complete(n)
	case "handback":
		if b, ok := p.boolean(n, "handback"); ok && !b {
			p.add(n, engine.CodeBadValue, "write `handback: true` or remove the step", "handback: false does nothing")
			return nil
		}
		return &handback{}
	}
	return nil
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}

func (p *parser) rawEvent(n *yaml.Node) input {
	f, ok := p.fields(n, "event", "", []string{"type", "keys", "contact", "text", "data"})
	if !ok {
		return nil
	}
	r := &raw{typ: p.str(f, "type", "event"), text: p.str(f, "text", "event")}
	if r.typ == "" {
		p.add(n, engine.CodeMissingKey, "add `type: okdesk.new_ticket` (or any event type)", "event needs a type")
		return nil
	}
	if k := f["keys"]; k != nil {
		if k.Kind != yaml.SequenceNode {
			p.add(k, engine.CodeWrongType, "", "event.keys must be a list, not %s", kindName(k))
		} else {
			for _, c := range k.Content {
				if s, ok := p.scalar(resolve(c), "a key"); ok {
					r.keys = append(r.keys, s)
				}
			}
		}
	}
	if c := f["contact"]; c != nil {
		for _, kv := range p.pairs(c, "event.contact") {
			v, _ := p.scalar(kv.val, "event.contact."+kv.key.Value)
			switch kv.key.Value {
			case "channel":
				r.contact.Channel = v
			case "id":
				r.contact.ID = v
			case "name":
				r.contact.Name = v
			case "phone":
				r.contact.Phone = v
			default:
				p.unknown(kv.key, "event.contact", []string{"channel", "id", "name", "phone"})
			}
		}
	}
	if d := f["data"]; d != nil {
		if d.Kind != yaml.MappingNode {
			p.add(d, engine.CodeWrongType, "", "event.data must be a mapping, not %s", kindName(d))
		} else if v, ok := p.value(d, "event.data"); ok {
			r.data, _ = v.(map[string]any)
		}
	}
	return r
}

func (p *parser) mock(n *yaml.Node) input {
	m := &mockStep{}
	ps := p.pairs(n, "mock")
	if n.Kind == yaml.MappingNode && len(ps) == 0 {
		p.add(n, engine.CodeMissingKey, "write `mock: { okdesk.create_issue: { id: \"1542\" } }`", "mock names no action")
	}
	for _, kv := range ps {
		kind := kv.key.Value
		if !p.actionKey(kv.key, "mock") {
			continue
		}
		e := mockEntry{kind: kind}
		switch {
		case kv.val.Kind == yaml.ScalarNode && (kv.val.Value == "default" || kv.val.Tag == "!!null"):
			e.reset = true
		case kv.val.Kind == yaml.ScalarNode && kv.val.Value == "pending":
			e.once, e.mock.Pending = true, true
		default:
			mk, once, ok := p.answer(kv.val, "mock."+kind, true)
			if !ok {
				continue
			}
			e.mock, e.once = mk, once
		}
		m.entries = append(m.entries, e)
	}
	return m
}

func (p *parser) complete(n *yaml.Node) input {
	c := &complete{}
	ps := p.pairs(n, "complete")
	if n.Kind == yaml.MappingNode && len(ps) == 0 {
		p.add(n, engine.CodeMissingKey, "write `complete: { okdesk.create_issue: { id: \"1542\" } }`", "complete names no action")
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	ok := len(ps) > 0
	for _, kv := range ps {
		kind := kv.key.Value
		if !p.actionKey(kv.key, "complete") {
			ok = false
			continue
		}
		e := completeEntry{kind: kind}
		if !(kv.val.Kind == yaml.ScalarNode && (kv.val.Value == "default" || kv.val.Tag == "!!null")) {
			mk, _, good := p.answer(kv.val, "complete."+kind, false)
			if !good {
				ok = false
				continue
			}
			e.mock = mk
		}
		c.entries = append(c.entries, e)
	}
	if !ok {
		return nil
	}
	return c
}

// actionKey checks that a mock's or a complete's key names an outbound action.
func (p *parser) actionKey(k *yaml.Node, what string) bool {
	if slices.Contains(actionKinds(), k.Value) {
		return true
	}
	hint := "one of: " + strings.Join(actionKinds(), ", ")
	if s := closest(k.Value, actionKinds()); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	p.add(k, engine.CodeUnknownAction, hint, "%s: unknown action %q", what, k.Value)
	return false
}

// answer reads an action's answer: `fail`, or a mapping of result fields or
// {fail: …} (and, for a mock, `once`). what is "mock.KIND" or "complete.KIND".
func (p *parser) answer(n *yaml.Node, what string, mock bool) (m Mock, once, ok bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "fail" {
			return Mock{Fail: &Failure{Code: connectorsBadRequest, Message: "mocked failure", Status: 400}}, false, true
		}
	case yaml.MappingNode:
		result := map[string]any{}
		ok = true
		for _, f := range p.pairs(n, what) {
			switch {
			case f.key.Value == "fail":
				m.Fail = p.failure(f.val, what)
			case f.key.Value == "once" && mock:
				once, _ = p.boolean(f.val, what+".once")
			case f.key.Value == "once" || f.key.Value == "pending":
				p.add(f.key, engine.CodeBadValue, "a complete step gives the result itself: result fields, or {fail: …}",
					"%s: %q means nothing here", what, f.key.Value)
				ok = false
			default:
				if v, good := p.value(f.val, what+"."+f.key.Value); good {
					result[f.key.Value] = v
				}
			}
		}
		if m.Fail != nil && len(result) > 0 {
			p.add(n, engine.CodeWrongType, "give either result fields or fail", "%s has both a result and a failure", what)
		}
		m.Result = result
		return m, once, ok
	}
	forms := "a mapping of result fields, {fail: …}, fail, pending or default"
	if !mock {
		forms = "a mapping of result fields, {fail: …}, fail or default"
	}
	p.add(n, engine.CodeWrongType, "", "%s takes %s, not %s", what, forms, kindName(n))
	return Mock{}, false, false
}

const connectorsBadRequest = "bad_request"

func (p *parser) failure(n *yaml.Node, what string) *Failure {
	f := &Failure{Code: connectorsBadRequest, Message: "mocked failure"}
	if n.Kind == yaml.ScalarNode {
		f.Code = n.Value
		return f
	}
	for _, kv := range p.pairs(n, what+".fail") {
		switch kv.key.Value {
		case "code":
			f.Code, _ = p.scalar(kv.val, "fail.code")
		case "message":
			f.Message, _ = p.scalar(kv.val, "fail.message")
		case "status":
			s, _ := p.scalar(kv.val, "fail.status")
			v, err := strconv.Atoi(s)
			if err != nil {
				p.add(kv.val, engine.CodeWrongType, "", "fail.status must be an HTTP status number, not %q", s)
			}
			f.Status = v
		default:
			p.unknown(kv.key, "fail", []string{"code", "message", "status"})
		}
	}
	return f
}

// actionKinds lists the outbound actions a mock may name.
func actionKinds() []string {
	var out []string
	for _, a := range engine.Actions {
		switch a.Name {
		case "bind", "log", "handoff":
		default:
			out = append(out, a.Name)
		}
	}
	return out
}

func (p *parser) expect(n *yaml.Node, inbound bool) *Expect {
	e := &Expect{Pos: posOf(n)}
	ps := p.pairs(n, "expect")
	for _, kv := range ps {
		k, v := kv.key.Value, kv.val
		switch k {
		case "sent":
			e.HasSent = true
			for _, c := range p.seq(v, "expect.sent") {
				if m, ok := p.msg(c); ok {
					e.Sent = append(e.Sent, m)
				}
			}
		case "actions":
			e.HasActs = true
			for _, c := range p.seq(v, "expect.actions") {
				if m, ok := p.actionM(c); ok {
					e.Actions = append(e.Actions, m)
				}
			}
		case "failed":
			e.HasFail = true
			for _, c := range p.seq(v, "expect.failed") {
				if m, ok := p.failM(c); ok {
					e.Failed = append(e.Failed, m)
				}
			}
		case "logged":
			e.HasLog = true
			for _, c := range p.seq(v, "expect.logged") {
				if s, ok := p.scalar(c, "a logged line"); ok {
					e.Logged = append(e.Logged, parseTextMatch(s))
				}
			}
		case "state":
			if s, ok := p.scalar(v, "expect.state"); ok {
				e.State = &s
			}
		case "vars":
			e.Vars = map[string]any{}
			for _, f := range p.pairs(v, "expect.vars") {
				if x, ok := p.value(f.val, "expect.vars."+f.key.Value); ok {
					e.Vars[f.key.Value] = x
					e.VarKeys = append(e.VarKeys, f.key.Value)
				}
			}
		case "status":
			if s, ok := p.scalar(v, "expect.status"); ok {
				if !slices.Contains(statuses, s) {
					p.add(v, engine.CodeBadValue, "one of: "+strings.Join(statuses, ", "), "expect.status %q is not a dialog status", s)
				}
				e.Status = &s
			}
		case "finished":
			if b, ok := p.boolean(v, "expect.finished"); ok {
				if !b {
					p.add(v, engine.CodeBadValue, "write `status: active` (or another status) instead", "finished: false says too little")
					continue
				}
				s := string(dialog.Finished)
				e.Status = &s
			}
		case "outcome", "unhandled", "ignored", "unrouted":
			if !inbound {
				p.add(kv.key, engine.CodeBadValue, "check the outcome on the step that sends the event", "expect.%s applies to inbound steps only", k)
				continue
			}
			o := Outcome(k)
			if k == "outcome" {
				s, _ := p.scalar(v, "expect.outcome")
				o = Outcome(s)
				if !slices.Contains(outcomes, o) {
					p.add(v, engine.CodeBadValue, "one of: "+joinOutcomes(), "expect.outcome %q is not an outcome", s)
					continue
				}
			} else if b, ok := p.boolean(v, "expect."+k); !ok {
				continue
			} else if !b {
				o = OutcomeHandled
			}
			if e.Outcome != nil {
				p.add(kv.key, engine.CodeDuplicateKey, "keep one of them", "expect has more than one outcome")
			}
			e.Outcome = &o
		case "error":
			if s, ok := p.scalar(v, "expect.error"); ok {
				m := parseTextMatch(s)
				e.Error = &m
			}
		case "started":
			if b, ok := p.boolean(v, "expect.started"); ok {
				e.Started = &b
			}
		case "keys":
			for _, c := range p.seq(v, "expect.keys") {
				if s, ok := p.scalar(c, "a key"); ok {
					e.Keys = append(e.Keys, s)
				}
			}
		default:
			p.unknown(kv.key, "expect", expectKeys)
		}
	}
	return e
}

func joinOutcomes() string {
	s := make([]string, len(outcomes))
	for i, o := range outcomes {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

func (p *parser) seq(n *yaml.Node, what string) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "none") {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, engine.CodeWrongType, "write a list, e.g. [\"text\"], or [] for none", "%s must be a list, not %s", what, kindName(n))
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, resolve(c))
	}
	return out
}

func (p *parser) msg(n *yaml.Node) (msgMatch, bool) {
	var m msgMatch
	if n.Kind == yaml.ScalarNode {
		s, ok := p.scalar(n, "a sent message")
		tm := parseTextMatch(s)
		m.text = &tm
		return m, ok
	}
	ok := true
	for _, kv := range p.pairs(n, "a sent message") {
		switch kv.key.Value {
		case "text":
			if s, good := p.scalar(kv.val, "text"); good {
				tm := parseTextMatch(s)
				m.text = &tm
			}
		case "buttons", "list":
			var tms []textMatch
			for _, c := range p.seq(kv.val, kv.key.Value) {
				if s, good := p.scalar(c, "a choice title"); good {
					tms = append(tms, parseTextMatch(s))
				}
			}
			if kv.key.Value == "buttons" {
				m.buttons, m.hasButtons = tms, true
			} else {
				m.rows, m.hasRows = tms, true
			}
		case "template":
			if s, good := p.scalar(kv.val, "template"); good {
				tm := parseTextMatch(s)
				m.template = &tm
			}
		case "params":
			if v, good := p.value(kv.val, "params"); good {
				l, isList := v.([]any)
				if !isList {
					p.add(kv.val, engine.CodeWrongType, "", "params must be a list of template parameters")
				}
				m.params, m.hasParams = l, true
			}
		case "via":
			m.via, _ = p.scalar(kv.val, "via")
			if !slices.Contains([]string{"text", "buttons", "list", "template", "fallback_template"}, m.via) {
				p.add(kv.val, engine.CodeBadValue, "one of: text, buttons, list, template, fallback_template", "via %q is not a way a message goes", m.via)
			}
		default:
			p.unknown(kv.key, "a sent message", []string{"text", "buttons", "list", "template", "params", "via"})
			ok = false
		}
	}
	return m, ok
}

func (p *parser) actionM(n *yaml.Node) (actionMatch, bool) {
	if n.Kind == yaml.ScalarNode {
		s, ok := p.scalar(n, "an action")
		return actionMatch{kind: s}, ok && p.knownAction(n, s)
	}
	ps := p.pairs(n, "an action")
	if n.Kind != yaml.MappingNode || len(ps) != 1 {
		if n.Kind == yaml.MappingNode {
			p.add(n, engine.CodeWrongType, "write `- okdesk.create_issue: { title: \"~Анна\" }`", "an expected action is a mapping with one key (its kind)")
		}
		return actionMatch{}, false
	}
	m := actionMatch{kind: ps[0].key.Value}
	if !p.knownAction(ps[0].key, m.kind) {
		return m, false
	}
	if v := ps[0].val; !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		if v.Kind != yaml.MappingNode {
			p.add(v, engine.CodeWrongType, "", "the parameters of %s must be a mapping, not %s", m.kind, kindName(v))
			return m, false
		}
		x, ok := p.value(v, m.kind)
		if !ok {
			return m, false
		}
		m.params, _ = x.(map[string]any)
	}
	return m, true
}

func (p *parser) knownAction(n *yaml.Node, kind string) bool {
	if slices.Contains(actionKinds(), kind) {
		return true
	}
	hint := "one of: " + strings.Join(actionKinds(), ", ")
	if s := closest(kind, actionKinds()); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	p.add(n, engine.CodeUnknownAction, hint, "unknown action %q", kind)
	return false
}

func (p *parser) failM(n *yaml.Node) (failMatch, bool) {
	if n.Kind == yaml.ScalarNode {
		s, ok := p.scalar(n, "a failed action")
		return failMatch{kind: s}, ok && p.knownAction(n, s)
	}
	ps := p.pairs(n, "a failed action")
	if n.Kind != yaml.MappingNode || len(ps) != 1 {
		if n.Kind == yaml.MappingNode {
			p.add(n, engine.CodeWrongType, "write `- send: window_closed`", "an expected failure is a mapping with one key (the action's kind)")
		}
		return failMatch{}, false
	}
	m := failMatch{kind: ps[0].key.Value}
	if !p.knownAction(ps[0].key, m.kind) {
		return m, false
	}
	if v := ps[0].val; !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		m.code, _ = p.scalar(v, "a failure code")
	}
	return m, true
}

// parseDuration reads 90s, 15m, 25h, 1h30m and whole days (2d, 1d12h).
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
	}
	var d time.Duration
	if s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
	}
	d += days
	if d <= 0 {
		return 0, fmt.Errorf("the duration must be positive")
	}
	return d, nil
}

// closest returns the candidate within edit distance 2 of s, or "". Names longer
// than 64 characters are not compared (the distance is quadratic in length).
func closest(s string, cands []string) string {
	if utf8.RuneCountInString(s) > 64 {
		return ""
	}
	best, bestD := "", 3
	for _, c := range cands {
		if utf8.RuneCountInString(c) > 64 {
			continue
		}
		if d := engine.EditDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}
