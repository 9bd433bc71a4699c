package scenario

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/sim"
)

// ScenarioFile is a parsed `*_test.yaml` file.
type ScenarioFile struct {
	Name      string
	Scenarios []*Scenario
	// Flows are the flow files and folders the scenarios run against (`flows:`,
	// joined to the file's folder); empty: the file's folder.
	Flows []string
}

// Scenario is one named sequence of steps run in a fresh world.
type Scenario struct {
	File     string
	Pos      engine.Pos
	Name     string
	Start    time.Time
	Contact  sim.WhatsAppContact
	Telegram sim.TelegramChat
	Env      map[string]any
	Steps    []*Step
	// Flows are its file's flows (see ScenarioFile.Flows).
	Flows []string
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
	Outcome *sim.Outcome
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
	file       *textMatch
	via        string
	from       string // the WhatsApp business number it left from
}

type actionMatch struct {
	kind   string
	params map[string]any // nil: any parameters
}

type failMatch struct {
	kind string
	code string // "": any code
}

var statuses = func() []string {
	out := make([]string, len(dialog.Statuses))
	for i, s := range dialog.Statuses {
		out[i] = string(s)
	}
	return out
}()

// ParseScenarios parses a scenario file. It reports every problem it finds, each
// with its range, through the same YAML front end as flow files, and returns the
// scenarios only when there is none.
func ParseScenarios(name string, data []byte) (*ScenarioFile, engine.Diagnostics) {
	doc, root := engine.ParseYAML(name, data)
	p := &parser{file: name, doc: doc}
	out := p.file0(root)
	diags := doc.Diagnostics()
	if diags.HasErrors() {
		return nil, diags
	}
	return out, diags
}

type parser struct {
	file string
	doc  *engine.YAMLDoc
}

func (p *parser) add(n *yaml.Node, code, hint, format string, args ...any) {
	p.doc.Error(n, code, fmt.Sprintf(format, args...), hint)
}

func posOf(n *yaml.Node) engine.Pos {
	if n == nil || n.Line < 1 {
		return engine.Pos{Line: 1, Col: 1}
	}
	return engine.Pos{Line: n.Line, Col: max(n.Column, 1)}
}

type pair = engine.Pair

// pairs returns a mapping's entries, reporting duplicate keys; what names the
// mapping when it is something else.
func (p *parser) pairs(n *yaml.Node, what string) []pair {
	n = engine.Resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if n != nil {
			p.add(n, engine.CodeWrongType, "", "%s must be a mapping, not %s", what, engine.KindName(n))
		}
		return nil
	}
	return p.doc.Pairs(n)
}

func (p *parser) unknown(k *yaml.Node, spec engine.Object) {
	p.doc.UnknownKey(k, spec, nil, nil)
}

func (p *parser) scalar(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.add(n, engine.CodeWrongType, "", "%s must be a scalar, not %s", what, engine.KindName(n))
		return "", false
	}
	return n.Value, true
}

func (p *parser) boolean(n *yaml.Node, what string) (bool, bool) {
	return p.doc.Bool(n, what)
}

// value decodes a node into the JSON data model (numbers as float64).
func (p *parser) value(n *yaml.Node, what string) (any, bool) {
	return p.doc.Decode(n, what)
}

// flowPaths reads `flows:`: one path or a list, each joined to the scenario
// file's folder.
func (p *parser) flowPaths(n *yaml.Node) []string {
	nodes := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		nodes = nodes[:0]
		for _, c := range n.Content {
			nodes = append(nodes, engine.Resolve(c))
		}
	}
	var out []string
	for _, c := range nodes {
		v, ok := p.scalar(c, "a flow path")
		if !ok {
			continue
		}
		if v == "" {
			p.add(c, engine.CodeBadValue, "name a flow file or folder, relative to this file", "a flow path is empty")
			continue
		}
		if !filepath.IsAbs(v) {
			v = filepath.Join(filepath.Dir(p.file), v)
		}
		out = append(out, v)
	}
	return out
}

func (p *parser) file0(root *yaml.Node) *ScenarioFile {
	out := &ScenarioFile{Name: p.file}
	if root == nil {
		if !p.doc.Diagnostics().HasErrors() {
			p.doc.ErrorAt(engine.Pos{Line: 1, Col: 1}, engine.CodeMissingKey, "the file is empty", "add `scenarios:` with a list of scenarios")
		}
		return out
	}
	defaults := Scenario{File: p.file, Start: sim.DefaultStart(), Contact: sim.WhatsAppContact{Phone: "+79161234567", Name: "Анна"},
		Telegram: sim.TelegramChat{ChatID: "512345678", Name: "Анна"}}
	if !p.doc.Expect(root, yaml.MappingNode, "a scenario file") {
		return out
	}
	f, _ := p.doc.Fields(root, FileSpec, nil, nil, nil)
	for _, k := range []string{"start", "contact", "telegram", "env"} {
		if v := f[k]; v != nil {
			p.setting(&defaults, k, v)
		}
	}
	if v := f["flows"]; v != nil {
		out.Flows = p.flowPaths(engine.Resolve(v))
		defaults.Flows = out.Flows
	}
	list := f["scenarios"]
	if list == nil {
		return out
	}
	if list.Kind != yaml.SequenceNode {
		p.add(list, engine.CodeWrongType, "", "scenarios must be a list, not %s", engine.KindName(list))
		return out
	}
	names := map[string]bool{}
	for _, c := range list.Content {
		if sc := p.scenario(engine.Resolve(c), defaults); sc != nil {
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
func (p *parser) setting(sc *Scenario, key string, val *yaml.Node) {
	switch key {
	case "start":
		s, ok := p.scalar(val, "start")
		if !ok {
			return
		}
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			p.add(val, engine.CodeBadValue, "write an RFC 3339 time, e.g. 2026-11-29T10:00:00+03:00", "start %q is not an RFC 3339 time", s)
			return
		}
		sc.Start = t
	case "contact":
		if !p.doc.Expect(val, yaml.MappingNode, "contact") {
			return
		}
		f, _ := p.doc.Fields(val, ContactSpec, nil, nil, nil)
		if n := f["phone"]; n != nil {
			if v, ok := p.scalar(n, "contact.phone"); ok {
				if event.NormalizePhone(v) == "" {
					p.add(n, engine.CodeBadValue, "write the phone with its country code, e.g. +79161234567", "%q is not a phone number", v)
				}
				sc.Contact.Phone = v
			}
		}
		if n := f["name"]; n != nil {
			if v, ok := p.scalar(n, "contact.name"); ok {
				sc.Contact.Name = v
			}
		}
	case "telegram":
		if !p.doc.Expect(val, yaml.MappingNode, "telegram") {
			return
		}
		f, _ := p.doc.Fields(val, TelegramSpec, nil, nil, nil)
		if n := f["chat_id"]; n != nil {
			if v, ok := p.scalar(n, "telegram.chat_id"); ok {
				sc.Telegram.ChatID = v
			}
		}
		if n := f["name"]; n != nil {
			if v, ok := p.scalar(n, "telegram.name"); ok {
				sc.Telegram.Name = v
			}
		}
	case "env":
		env := map[string]any{}
		for k, v := range sc.Env {
			env[k] = v
		}
		for _, f := range p.pairs(val, "env") {
			if !strings.HasPrefix(f.Key.Value, engine.FlowEnvPrefix) {
				p.add(f.Key, engine.CodeBadValue, "flows see only FLOW_* variables", "env variable %q does not start with %s", f.Key.Value, engine.FlowEnvPrefix)
				continue
			}
			if v, ok := p.scalar(f.Val, "env."+f.Key.Value); ok && v != "" {
				env[f.Key.Value] = v
			}
		}
		sc.Env = env
	}
}

func (p *parser) scenario(n *yaml.Node, defaults Scenario) *Scenario {
	if n.Kind != yaml.MappingNode {
		p.add(n, engine.CodeWrongType, "start each scenario with `- name: …`", "a scenario must be a mapping, not %s", engine.KindName(n))
		return nil
	}
	sc := defaults
	sc.Pos = posOf(n)
	sc.Steps = nil
	f, _ := p.doc.Fields(n, ScenarioSpec, nil, nil, nil)
	if v := f["name"]; v != nil {
		sc.Name, _ = p.scalar(v, "name")
	}
	for _, k := range []string{"start", "contact", "telegram", "env"} {
		if v := f[k]; v != nil {
			p.setting(&sc, k, v)
		}
	}
	steps := f["steps"]
	if steps == nil {
		return &sc
	}
	if steps.Kind != yaml.SequenceNode {
		p.add(steps, engine.CodeWrongType, "", "steps must be a list, not %s", engine.KindName(steps))
		return &sc
	}
	for _, c := range steps.Content {
		if st := p.step(engine.Resolve(c), &sc); st != nil {
			sc.Steps = append(sc.Steps, st)
		}
	}
	return &sc
}

func (p *parser) step(n *yaml.Node, sc *Scenario) *Step {
	if n.Kind != yaml.MappingNode {
		p.add(n, engine.CodeWrongType, "write a step as `- whatsapp: \"text\"`, `- advance: 25h`, …", "a step must be a mapping, not %s", engine.KindName(n))
		return nil
	}
	st := &Step{Pos: posOf(n)}
	var expect *yaml.Node
	var kind pair
	var spec StepSpec
	unknown := false
	for _, kv := range p.pairs(n, "a step") {
		ks, isStep := stepSpec(kv.Key.Value)
		switch {
		case kv.Key.Value == "expect":
			expect = kv.Val
		case isStep:
			if kind.Key != nil {
				p.add(kv.Key, engine.CodeWrongType, "split it into two steps", "a step has one input; this one has %q and %q", kind.Key.Value, kv.Key.Value)
				continue
			}
			kind, spec = kv, ks
		default:
			unknown = true
			p.unknown(kv.Key, stepKeys)
		}
	}
	if kind.Key == nil {
		if !unknown { // else the unknown key is the cause
			p.add(n, engine.CodeMissingKey, "start the step with one of: "+strings.Join(StepKinds(), ", "), "the step has no input")
		}
		return nil
	}
	st.Kind, st.Pos = kind.Key.Value, posOf(kind.Key)
	st.Text = p.stepText(kind)
	st.in = p.input(spec, kind.Val, sc)
	if expect != nil {
		// A complete step delivers one event too: its outcome may be checked.
		st.Expect = p.expect(expect, spec.Inbound || st.Kind == "complete")
	}
	if st.in == nil {
		return nil
	}
	return st
}

// stepKeys are the keys a step may have: one step kind and `expect`.
var stepKeys = engine.Object{Name: "step", Fields: func() []engine.Field {
	var out []engine.Field
	for _, k := range append(StepKinds(), "expect") {
		out = append(out, engine.Field{Name: k})
	}
	return out
}()}

// stepText renders a step's input on one line, as written.
func (p *parser) stepText(kv pair) string {
	if n := kv.Val; n.Kind == yaml.ScalarNode {
		if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || strings.ContainsAny(n.Value, ":#\n") {
			return kv.Key.Value + ": " + sim.Quote(n.Value)
		}
		return kv.Key.Value + ": " + n.Value
	}
	v, ok := p.value(kv.Val, kv.Key.Value)
	if !ok {
		return kv.Key.Value
	}
	return kv.Key.Value + ": " + sim.Show(v)
}

// fields reads a step's mapping argument (checked against its spec), or its
// short form into the spec's Short field. ok is false when the value has a key
// the step does not take.
func (p *parser) fields(n *yaml.Node, spec StepSpec) (map[string]*yaml.Node, bool) {
	what := spec.Name
	if n.Kind == yaml.ScalarNode && spec.Short != "" {
		if n.Tag == "!!null" {
			p.add(n, engine.CodeWrongType, "", "%s needs a value", what)
			return nil, false
		}
		return map[string]*yaml.Node{spec.Short: n}, true
	}
	if n.Kind != yaml.MappingNode {
		want := "a mapping"
		if spec.Short != "" {
			want = "a " + spec.Short + " or a mapping"
		}
		p.add(n, engine.CodeWrongType, "", "%s takes %s, not %s", what, want, engine.KindName(n))
		return nil, false
	}
	before := p.doc.Errors()
	f, _ := p.doc.Fields(n, spec.Object, nil, nil, nil)
	return f, p.doc.Errors() == before
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

func (p *parser) from(f map[string]*yaml.Node, what string, sc *Scenario) sim.WhatsAppContact {
	c := sc.Contact
	if n := f["from"]; n != nil {
		if s, ok := p.scalar(n, what+".from"); ok {
			if event.NormalizePhone(s) == "" {
				p.add(n, engine.CodeBadValue, "write the phone with its country code, e.g. +79161234567", "%q is not a phone number", s)
			}
			c = sim.WhatsAppContact{Phone: s}
		}
	}
	if n := f["name"]; n != nil {
		c.Name, _ = p.scalar(n, what+".name")
	}
	if n := f["to"]; n != nil {
		if s, ok := p.scalar(n, what+".to"); ok {
			if s == "" || strings.Trim(s, "0123456789") != "" {
				p.add(n, engine.CodeBadValue, "a business number's phone_number_id is digits, e.g. \"200000000000002\"",
					"%q is not a phone number id", s)
			}
			c.To = s
		}
	}
	return c
}

func (p *parser) chat(f map[string]*yaml.Node, what string, sc *Scenario) sim.TelegramChat {
	c := sc.Telegram
	if n := f["chat"]; n != nil {
		if s, ok := p.scalar(n, what+".chat"); ok {
			c = sim.TelegramChat{ChatID: s}
		}
	}
	if n := f["name"]; n != nil {
		c.Name, _ = p.scalar(n, what+".name")
	}
	return c
}

func (p *parser) input(spec StepSpec, n *yaml.Node, sc *Scenario) input {
	kind := spec.Name
	switch kind {
	case "whatsapp":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		return &waText{from: p.from(f, kind, sc), text: p.str(f, "text", kind)}
	case "button", "list":
		f, ok := p.fields(n, spec)
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
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		mk := map[string]string{"photo": "image", "document": "document"}[kind]
		if kind == "media" {
			mk = p.str(f, "kind", kind)
			if !slices.Contains(sim.MediaKinds, mk) {
				p.add(orNode(f["kind"], n), engine.CodeBadValue, "one of: "+strings.Join(sim.MediaKinds, ", "), "media.kind %q is not a media kind", mk)
				return nil
			}
		}
		file, err := sim.FileFor(mk, p.str(f, "fixture", kind), p.str(f, "content", kind), p.str(f, "filename", kind))
		if err != nil {
			p.add(orNode(f["fixture"], n), engine.CodeBadValue, "one of: "+strings.Join(sim.FixtureNames(), ", "), "%s: %v", kind, err)
			return nil
		}
		return &waMedia{from: p.from(f, kind, sc), kind: mk, caption: p.str(f, "caption", kind), filename: p.str(f, "filename", kind), content: file.Content}
	case "location":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		c := p.from(map[string]*yaml.Node{"from": f["from"], "to": f["to"]}, kind, sc)
		if f["from"] == nil {
			c.Phone, c.Name = sc.Contact.Phone, sc.Contact.Name
		}
		return &waLocation{from: c, lat: p.num(f, "latitude", kind), lon: p.num(f, "longitude", kind),
			name: p.str(f, "name", kind), address: p.str(f, "address", kind)}
	case "receipt":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		st := p.str(f, "status", kind)
		if st == "" {
			st = "delivered"
		}
		if !slices.Contains([]string{"sent", "delivered", "read", "failed"}, st) {
			p.add(orNode(f["status"], n), engine.CodeBadValue, "one of: sent, delivered, read, failed", "receipt.status %q is not a delivery status", st)
			return nil
		}
		r := &waReceipt{from: p.from(map[string]*yaml.Node{"from": f["from"]}, kind, sc),
			receipt: sim.Receipt{Status: st, Title: p.str(f, "title", kind)}}
		if st == "failed" {
			r.receipt.Code = 131026
			if f["code"] != nil {
				r.receipt.Code = int(p.num(f, "code", kind))
			}
		}
		return r
	case "telegram":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		return &tgText{chat: p.chat(f, kind, sc), text: p.str(f, "text", kind)}
	case "callback":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		return &tgCallback{chat: p.chat(f, kind, sc), data: p.str(f, "data", kind)}
	case "okdesk.status":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		return &okStatus{issue: p.str(f, "issue", kind), status: p.str(f, "status", kind), old: p.str(f, "old", kind), phone: p.str(f, "phone", kind)}
	case "okdesk.comment":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		c := &okComment{issue: p.str(f, "issue", kind), text: p.str(f, "text", kind), public: true, author: "employee", phone: p.str(f, "phone", kind)}
		if f["fixture"] != nil || f["content"] != nil {
			file, err := sim.FileFor("document", p.str(f, "fixture", kind), p.str(f, "content", kind), p.str(f, "filename", kind))
			if err != nil {
				p.add(orNode(f["fixture"], n), engine.CodeBadValue, "one of: "+strings.Join(sim.FixtureNames(), ", "), "%s: %v", kind, err)
				return nil
			}
			c.files = []sim.File{file}
		}
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
	case "okdesk.files":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		fixture := p.str(f, "fixture", kind)
		if fixture == "" && p.str(f, "content", kind) == "" {
			fixture = "document.pdf"
		}
		file, err := sim.FileFor("document", fixture, p.str(f, "content", kind), p.str(f, "filename", kind))
		if err != nil {
			p.add(orNode(f["fixture"], n), engine.CodeBadValue, "one of: "+strings.Join(sim.FixtureNames(), ", "), "%s: %v", kind, err)
			return nil
		}
		c := &okFiles{issue: p.str(f, "issue", kind), phone: p.str(f, "phone", kind), public: true, file: file}
		if b := f["public"]; b != nil {
			c.public, _ = p.boolean(b, kind+".public")
		}
		return c
	case "onec.payment":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		pay := &onecPayment{p: sim.Payment{ID: p.str(f, "id", kind), Status: p.str(f, "status", kind), InvoiceID: p.str(f, "invoice_id", kind),
			OkdeskIssueID: p.str(f, "okdesk_issue_id", kind), Phone: p.str(f, "phone", kind), Amount: p.num(f, "amount", kind)}}
		if pay.p.Status == "" {
			pay.p.Status = "paid"
		}
		pay.auto = f["okdesk_issue_id"] == nil && f["phone"] == nil
		return pay
	case "event":
		return p.rawEvent(n, spec)
	case "advance":
		d, ok := p.doc.Duration(n, "advance")
		if !ok {
			return nil
		}
		return &advance{d: d}
	case "mock":
		return p.mock(n)
	case "complete":
		return p.complete(n)
	case "handback":
		if n.Kind == yaml.ScalarNode {
			if b, ok := p.boolean(n, "handback"); ok && !b {
				p.add(n, engine.CodeBadValue, "write `handback: true` or remove the step", "handback: false does nothing")
				return nil
			}
			return &control{c: event.Control{Kind: event.ControlHandback}}
		}
		return p.control(spec, n, event.ControlHandback)
	case "takeover":
		return p.control(spec, n, event.ControlTakeover)
	case "message":
		return p.control(spec, n, event.ControlMessage)
	case "goto":
		return p.control(spec, n, event.ControlGoto)
	case "close":
		return p.control(spec, n, event.ControlClose)
	case "retry":
		f, ok := p.fields(n, spec)
		if !ok {
			return nil
		}
		kind := p.str(f, "kind", spec.Name)
		if kind == "" || !p.knownAction(orNode(f["kind"], n), kind) {
			return nil
		}
		return &retry{kind: kind}
	}
	return nil
}

// control reads an operator's control step.
func (p *parser) control(spec StepSpec, n *yaml.Node, kind string) input {
	f, ok := p.fields(n, spec)
	if !ok {
		return nil
	}
	c := event.Control{Kind: kind, Operator: p.str(f, "operator", spec.Name), Reason: p.str(f, "reason", spec.Name),
		State: p.str(f, "state", spec.Name), Status: p.str(f, "status", spec.Name), Text: p.str(f, "text", spec.Name)}
	if t := f["template"]; t != nil {
		v, ok := p.value(t, spec.Name+".template")
		if m, isMap := v.(map[string]any); ok && isMap && m["name"] != nil {
			c.Template = m
		} else {
			p.add(t, engine.CodeWrongType, "write `template: { name: NAME, language: ru, params: [...] }`", "%s.template must be a mapping with a name", spec.Name)
			return nil
		}
	}
	switch {
	case kind == event.ControlGoto && c.State == "":
		p.add(n, engine.CodeMissingKey, "add `state: NAME`", "goto needs a state")
	case kind == event.ControlClose && c.Status == "":
		p.add(n, engine.CodeMissingKey, "add `status: finished` or `status: abandoned`", "close needs a status")
	case kind == event.ControlMessage && c.Text == "" && c.Template == nil:
		p.add(n, engine.CodeMissingKey, "add `text: …` or `template: {…}`", "message needs a text or a template")
	default:
		return &control{c: c}
	}
	return nil
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}

func (p *parser) rawEvent(n *yaml.Node, spec StepSpec) input {
	f, ok := p.fields(n, spec)
	if !ok || f["type"] == nil {
		return nil
	}
	r := &raw{typ: p.str(f, "type", "event"), text: p.str(f, "text", "event")}
	if k := f["keys"]; k != nil {
		if k.Kind != yaml.SequenceNode {
			p.add(k, engine.CodeWrongType, "", "event.keys must be a list, not %s", engine.KindName(k))
		} else {
			for _, c := range k.Content {
				if s, ok := p.scalar(engine.Resolve(c), "a key"); ok {
					r.keys = append(r.keys, s)
				}
			}
		}
	}
	if c := f["contact"]; c != nil {
		if p.doc.Expect(c, yaml.MappingNode, "event.contact") {
			cf, _ := p.doc.Fields(c, EventContactSpec, nil, nil, nil)
			for name, dst := range map[string]*string{"channel": &r.contact.Channel, "id": &r.contact.ID, "name": &r.contact.Name, "phone": &r.contact.Phone} {
				if v := cf[name]; v != nil {
					*dst, _ = p.scalar(v, "event.contact."+name)
				}
			}
		}
	}
	if d := f["data"]; d != nil {
		if d.Kind != yaml.MappingNode {
			p.add(d, engine.CodeWrongType, "", "event.data must be a mapping, not %s", engine.KindName(d))
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
		kind := kv.Key.Value
		if !p.actionKey(kv.Key, "mock") {
			continue
		}
		e := mockEntry{kind: kind}
		switch {
		case kv.Val.Kind == yaml.ScalarNode && (kv.Val.Value == "default" || kv.Val.Tag == "!!null"):
			e.reset = true
		case kv.Val.Kind == yaml.ScalarNode && kv.Val.Value == "pending":
			e.once, e.mock.Pending = true, true
		default:
			mk, once, ok := p.answer(kv.Val, "mock."+kind, true)
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
		kind := kv.Key.Value
		if !p.actionKey(kv.Key, "complete") {
			ok = false
			continue
		}
		e := completeEntry{kind: kind}
		if !(kv.Val.Kind == yaml.ScalarNode && (kv.Val.Value == "default" || kv.Val.Tag == "!!null")) {
			mk, _, good := p.answer(kv.Val, "complete."+kind, false)
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
	if slices.Contains(sim.ActionKinds(), k.Value) {
		return true
	}
	hint := "one of: " + strings.Join(sim.ActionKinds(), ", ")
	if s := engine.DidYouMean(k.Value, sim.ActionKinds()); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	p.add(k, engine.CodeUnknownAction, hint, "%s: unknown action %q", what, k.Value)
	return false
}

// answer reads an action's answer: `fail`, or a mapping of result fields or
// {fail: …} (and, for a mock, `once`). what is "mock.KIND" or "complete.KIND".
func (p *parser) answer(n *yaml.Node, what string, mock bool) (m sim.Mock, once, ok bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "fail" {
			return sim.Mock{Fail: &sim.Failure{Code: connectors.CodeBadRequest, Message: "mocked failure", Status: 400}}, false, true
		}
	case yaml.MappingNode:
		result := map[string]any{}
		ok = true
		for _, f := range p.pairs(n, what) {
			switch {
			case f.Key.Value == "fail":
				m.Fail = p.failure(f.Val, what)
			case f.Key.Value == "once" && mock:
				once, _ = p.boolean(f.Val, what+".once")
			case f.Key.Value == "once" || f.Key.Value == "pending":
				p.add(f.Key, engine.CodeBadValue, "a complete step gives the result itself: result fields, or {fail: …}",
					"%s: %q means nothing here", what, f.Key.Value)
				ok = false
			default:
				if v, good := p.value(f.Val, what+"."+f.Key.Value); good {
					result[f.Key.Value] = v
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
	p.add(n, engine.CodeWrongType, "", "%s takes %s, not %s", what, forms, engine.KindName(n))
	return sim.Mock{}, false, false
}

func (p *parser) failure(n *yaml.Node, what string) *sim.Failure {
	f := &sim.Failure{Code: connectors.CodeBadRequest, Message: "mocked failure"}
	if n.Kind == yaml.ScalarNode {
		f.Code = n.Value
		return f
	}
	for _, kv := range p.pairs(n, what+".fail") {
		switch kv.Key.Value {
		case "code":
			f.Code, _ = p.scalar(kv.Val, "fail.code")
		case "message":
			f.Message, _ = p.scalar(kv.Val, "fail.message")
		case "status":
			s, _ := p.scalar(kv.Val, "fail.status")
			v, err := strconv.Atoi(s)
			if err != nil {
				p.add(kv.Val, engine.CodeWrongType, "", "fail.status must be an HTTP status number, not %q", s)
			}
			f.Status = v
		default:
			p.unknown(kv.Key, FailSpec)
		}
	}
	return f
}

func (p *parser) expect(n *yaml.Node, inbound bool) *Expect {
	e := &Expect{Pos: posOf(n)}
	ps := p.pairs(n, "expect")
	for _, kv := range ps {
		k, v := kv.Key.Value, kv.Val
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
				if x, ok := p.value(f.Val, "expect.vars."+f.Key.Value); ok {
					e.Vars[f.Key.Value] = x
					e.VarKeys = append(e.VarKeys, f.Key.Value)
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
				p.add(kv.Key, engine.CodeBadValue, "check the outcome on the step that sends the event", "expect.%s applies to inbound steps only", k)
				continue
			}
			o := sim.Outcome(k)
			if k == "outcome" {
				s, _ := p.scalar(v, "expect.outcome")
				o = sim.Outcome(s)
				if !slices.Contains(sim.Outcomes, o) {
					p.add(v, engine.CodeBadValue, "one of: "+joinOutcomes(), "expect.outcome %q is not an outcome", s)
					continue
				}
			} else if b, ok := p.boolean(v, "expect."+k); !ok {
				continue
			} else if !b {
				o = sim.OutcomeHandled
			}
			if e.Outcome != nil {
				p.add(kv.Key, engine.CodeDuplicateKey, "keep one of them", "expect has more than one outcome")
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
			p.unknown(kv.Key, ExpectSpec)
		}
	}
	return e
}

func joinOutcomes() string {
	s := make([]string, len(sim.Outcomes))
	for i, o := range sim.Outcomes {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

func (p *parser) seq(n *yaml.Node, what string) []*yaml.Node {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Value == "none") {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.add(n, engine.CodeWrongType, "write a list, e.g. [\"text\"], or [] for none", "%s must be a list, not %s", what, engine.KindName(n))
		return nil
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, c := range n.Content {
		out = append(out, engine.Resolve(c))
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
		switch kv.Key.Value {
		case "text":
			if s, good := p.scalar(kv.Val, "text"); good {
				tm := parseTextMatch(s)
				m.text = &tm
			}
		case "buttons", "list":
			var tms []textMatch
			for _, c := range p.seq(kv.Val, kv.Key.Value) {
				if s, good := p.scalar(c, "a choice title"); good {
					tms = append(tms, parseTextMatch(s))
				}
			}
			if kv.Key.Value == "buttons" {
				m.buttons, m.hasButtons = tms, true
			} else {
				m.rows, m.hasRows = tms, true
			}
		case "template":
			if s, good := p.scalar(kv.Val, "template"); good {
				tm := parseTextMatch(s)
				m.template = &tm
			}
		case "params":
			if v, good := p.value(kv.Val, "params"); good {
				l, isList := v.([]any)
				if !isList {
					p.add(kv.Val, engine.CodeWrongType, "", "params must be a list of template parameters")
				}
				m.params, m.hasParams = l, true
			}
		case "from":
			m.from, _ = p.scalar(kv.Val, "from")
		case "file":
			if s, good := p.scalar(kv.Val, "file"); good {
				tm := parseTextMatch(s)
				m.file = &tm
			}
		case "via":
			m.via, _ = p.scalar(kv.Val, "via")
			if !slices.Contains([]string{"text", "buttons", "list", "template", "fallback_template"}, m.via) {
				p.add(kv.Val, engine.CodeBadValue, "one of: text, buttons, list, template, fallback_template", "via %q is not a way a message goes", m.via)
			}
		default:
			p.unknown(kv.Key, SentSpec)
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
	m := actionMatch{kind: ps[0].Key.Value}
	if !p.knownAction(ps[0].Key, m.kind) {
		return m, false
	}
	if v := ps[0].Val; !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		if v.Kind != yaml.MappingNode {
			p.add(v, engine.CodeWrongType, "", "the parameters of %s must be a mapping, not %s", m.kind, engine.KindName(v))
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
	if slices.Contains(sim.ActionKinds(), kind) {
		return true
	}
	hint := "one of: " + strings.Join(sim.ActionKinds(), ", ")
	if s := engine.DidYouMean(kind, sim.ActionKinds()); s != "" {
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
	m := failMatch{kind: ps[0].Key.Value}
	if !p.knownAction(ps[0].Key, m.kind) {
		return m, false
	}
	if v := ps[0].Val; !(v.Kind == yaml.ScalarNode && v.Tag == "!!null") {
		m.code, _ = p.scalar(v, "a failure code")
	}
	return m, true
}
