package chat

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/sim"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Options configure Run.
type Options struct {
	Flow    *engine.Flow        // the flow to talk to: the only one that may start dialogs
	Channel string              // the customer's channel: "waba" (default) or "telegram"
	Contact sim.WhatsAppContact // the WhatsApp customer (channel waba)
	Chat    sim.TelegramChat    // the Telegram customer (channel telegram)
	Start   time.Time           // the fake clock's start; sim.DefaultStart() when zero
	Env     map[string]any      // FLOW_* variables
	Loader  *engine.Loader      // compiles the flow; sim.DefaultLoader() when nil
}

const chatHelp = `Type a message as the customer. A number taps the button (or list row) with that number.
Commands:
  /okdesk status CODE        the dialog's Okdesk issue moves to CODE (completed, closed, in_progress, …)
  /okdesk comment TEXT       a public comment on the issue by an engineer
  /okdesk private TEXT       a private comment
  /pay [STATUS]              1C payment for the issue (paid by default; partially_paid, unpaid, cancelled)
  /photo [CAPTION]           a photo (with a caption)
  /wait DURATION             move the clock: /wait 25h, /wait 2d, /wait 90m
  /mock KIND fail [CODE]     the next KIND action fails (e.g. /mock okdesk.create_issue fail)
  /mock KIND key=value …     the next KIND action answers these fields (e.g. /mock okdesk.create_issue id=1542)
  /mock KIND pending         the next KIND action stays pending until /complete (a slow connector)
  /complete KIND [k=v …]     the oldest pending KIND action answers: the default result, these fields over it
  /complete KIND fail [CODE] the oldest pending KIND action fails
  /event TYPE [JSON]         any event, routed by the dialog's keys (e.g. /event okdesk.new_ticket {"x":1})
  /handback                  an operator hands the dialog back to the bot
  /state  /vars  /history  /timers   show the dialog
  /reset                     forget everything and start over
  /help  /quit
`

type chat struct {
	opt     Options
	fs      *engine.FlowSet
	w       *sim.World
	out     io.Writer
	cur     int64 // the dialog the last input reached
	choices []sim.Choice
	list    bool
}

// Run runs the terminal simulator: it reads the operator's lines from in (typed
// as the customer, or slash commands) and writes the bot's replies, the actions it
// takes, and the dialog's state and variables to out. It returns at the end of in
// or on /quit.
func Run(in io.Reader, out io.Writer, opt Options) error {
	if opt.Flow == nil {
		return fmt.Errorf("chat: no flow")
	}
	if opt.Channel == "" {
		opt.Channel = "waba"
	}
	if opt.Channel != "waba" && opt.Channel != "telegram" {
		return fmt.Errorf("chat: channel %q is not waba or telegram", opt.Channel)
	}
	if opt.Contact.Phone == "" {
		opt.Contact = sim.WhatsAppContact{Phone: "+79161234567", Name: "Анна"}
	}
	if opt.Chat.ChatID == "" {
		opt.Chat = sim.TelegramChat{ChatID: "512345678", Name: "Анна"}
	}
	if opt.Loader == nil {
		opt.Loader = sim.DefaultLoader()
	}
	fs, diags := opt.Loader.Compile([]engine.File{{Name: opt.Flow.File, Data: opt.Flow.Source}})
	if fs == nil {
		return fmt.Errorf("chat: compile flow %s: %w", opt.Flow.Name, diags)
	}
	c := &chat{opt: opt, fs: fs, out: out}
	if err := c.reset(); err != nil {
		return fmt.Errorf("chat: %w", err)
	}
	defer func() { c.w.Close() }()
	who := fmt.Sprintf("WhatsApp %s (%s)", opt.Contact.Phone, opt.Contact.Name)
	if opt.Channel == "telegram" {
		who = fmt.Sprintf("Telegram chat %s (%s)", opt.Chat.ChatID, opt.Chat.Name)
	}
	fmt.Fprintf(out, "fixit chat: flow %s (%s) · you are %s · clock %s\n", opt.Flow.Name, opt.Flow.File, who, c.w.Now().Format("2006-01-02 15:04 MST"))
	fmt.Fprintln(out, "Type as the customer; /help lists the commands. Nothing leaves this terminal.")
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for {
		fmt.Fprint(out, "you> ")
		if !sc.Scan() {
			fmt.Fprintln(out)
			return sc.Err()
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if quit := c.line(line); quit {
			return nil
		}
	}
}

func (c *chat) reset() error {
	if c.w != nil {
		c.w.Close()
	}
	w, err := sim.NewWorld(c.fs, sim.Options{Start: c.opt.Start, Env: c.opt.Env})
	if err != nil {
		return err
	}
	c.w, c.cur, c.choices = w, 0, nil
	return nil
}

// dialog is the current dialog as stored now, or nil.
func (c *chat) dialog() *store.Dialog { return c.w.Dialog(c.cur) }

// line handles one input line; it reports whether to quit.
func (c *chat) line(line string) bool {
	if !strings.HasPrefix(line, "/") {
		if n, err := strconv.Atoi(line); err == nil && n >= 1 && n <= len(c.choices) {
			c.show(c.inject(c.tap(c.choices[n-1])))
			return false
		}
		c.show(c.inject(c.text(line)))
		return false
	}
	cmd, rest, _ := strings.Cut(line, " ")
	rest = strings.TrimSpace(rest)
	switch cmd {
	case "/quit", "/exit":
		return true
	case "/help":
		fmt.Fprint(c.out, chatHelp)
	case "/reset":
		if err := c.reset(); err != nil {
			fmt.Fprintf(c.out, "  /reset: %v\n", err)
			return true
		}
		fmt.Fprintln(c.out, "  (everything forgotten; the clock is back at the start)")
	case "/state":
		c.status()
	case "/vars":
		if d := c.dialog(); d == nil {
			fmt.Fprintln(c.out, "  (no dialog yet)")
		} else {
			for _, k := range c.w.Flow(d).VarNames {
				fmt.Fprintf(c.out, "  %s = %s\n", k, sim.Show(d.Vars[k]))
			}
		}
	case "/history":
		c.history()
	case "/timers":
		if c.cur == 0 {
			fmt.Fprintln(c.out, "  (no dialog yet)")
		} else if ts := c.w.PendingTimers(c.cur); len(ts) == 0 {
			fmt.Fprintln(c.out, "  (no pending timers)")
		} else {
			for _, t := range ts {
				fmt.Fprintf(c.out, "  %s\n", t)
			}
		}
	case "/wait":
		d, err := engine.ParseDuration(rest)
		if err != nil {
			fmt.Fprintf(c.out, "  /wait: %v (e.g. /wait 25h)\n", err)
			return false
		}
		rep := c.w.Advance(d)
		fmt.Fprintf(c.out, "  (clock: %s)\n", c.w.Now().Format("2006-01-02 15:04 MST"))
		c.show(rep)
	case "/okdesk":
		c.okdesk(rest)
	case "/pay":
		status := rest
		if status == "" {
			status = "paid"
		}
		p := sim.Payment{Status: status, Phone: c.opt.Contact.Phone, OkdeskIssueID: sim.IssueOf(c.dialog())}
		c.show(c.inject(c.w.Builder.OneCPayment(p)))
	case "/photo":
		if c.opt.Channel != "waba" {
			fmt.Fprintln(c.out, "  /photo is a WhatsApp message; this chat is on Telegram")
			return false
		}
		c.show(c.inject(c.w.Builder.WhatsAppMedia(c.opt.Contact, "image", rest, "")))
	case "/mock":
		c.mock(rest)
	case "/complete":
		c.complete(rest)
	case "/event":
		c.event(rest)
	case "/handback":
		if c.cur == 0 {
			fmt.Fprintln(c.out, "  (no dialog yet)")
		} else if rep, err := c.w.Handback(c.cur); err != nil {
			fmt.Fprintf(c.out, "  %v\n", err)
		} else {
			fmt.Fprintln(c.out, "  (the operator handed the dialog back to the bot)")
			c.show(rep)
		}
	default:
		fmt.Fprintf(c.out, "  unknown command %s; /help lists them\n", cmd)
	}
	return false
}

func (c *chat) text(s string) (sim.Delivery, error) {
	if c.opt.Channel == "telegram" {
		return c.w.Builder.TelegramText(c.opt.Chat, s)
	}
	return c.w.Builder.WhatsAppText(c.opt.Contact, s)
}

func (c *chat) tap(ch sim.Choice) (sim.Delivery, error) {
	fmt.Fprintf(c.out, "  (you tap %q)\n", ch.Title)
	switch {
	case c.opt.Channel == "telegram":
		return c.w.Builder.TelegramCallback(c.opt.Chat, ch.ID)
	case c.list:
		return c.w.Builder.WhatsAppList(c.opt.Contact, ch.ID, ch.Title, ch.Description)
	}
	return c.w.Builder.WhatsAppButton(c.opt.Contact, ch.ID, ch.Title)
}

// inject delivers a notification the input built (err: it could not be built).
func (c *chat) inject(d sim.Delivery, err error) *sim.Report {
	if err != nil {
		return &sim.Report{Err: err}
	}
	rep := c.w.Deliver(d)
	if len(rep.Events) > 0 && rep.Events[0].Dialog != 0 {
		c.cur = rep.Events[0].Dialog
	}
	return rep
}

func (c *chat) okdesk(rest string) {
	sub, arg, _ := strings.Cut(rest, " ")
	arg = strings.TrimSpace(arg)
	issue := sim.IssueOf(c.dialog())
	if issue == "" {
		fmt.Fprintln(c.out, "  the dialog has no Okdesk issue yet (no okdesk:issue key bound)")
		return
	}
	is := sim.OkdeskIssue{ID: issue}
	switch sub {
	case "status":
		if arg == "" {
			fmt.Fprintln(c.out, "  usage: /okdesk status CODE (e.g. completed)")
			return
		}
		c.show(c.inject(c.w.Builder.OkdeskStatus(is, arg, "")))
	case "comment", "private":
		if arg == "" {
			fmt.Fprintf(c.out, "  usage: /okdesk %s TEXT\n", sub)
			return
		}
		c.show(c.inject(c.w.Builder.OkdeskComment(is, arg, sub == "comment", "employee")))
	default:
		fmt.Fprintln(c.out, "  usage: /okdesk status CODE | /okdesk comment TEXT | /okdesk private TEXT")
	}
}

func (c *chat) mock(rest string) {
	f := strings.Fields(rest)
	if len(f) < 2 {
		fmt.Fprintln(c.out, "  usage: /mock KIND fail [CODE] | /mock KIND key=value … | /mock KIND pending")
		return
	}
	kind := f[0]
	if !c.knownKind("/mock", kind) {
		return
	}
	if f[1] == "pending" && len(f) == 2 {
		c.w.Mocks().Once(kind, sim.Mock{Pending: true})
		fmt.Fprintf(c.out, "  (the next %s stays pending until /complete %s)\n", kind, kind)
		return
	}
	m, ok := c.answer("/mock", f[1:])
	if !ok {
		return
	}
	c.w.Mocks().Once(kind, m)
	if m.Fail != nil {
		fmt.Fprintf(c.out, "  (the next %s fails: %s)\n", kind, m.Fail.Code)
		return
	}
	fmt.Fprintf(c.out, "  (the next %s answers %s)\n", kind, sim.Show(m.Result))
}

func (c *chat) complete(rest string) {
	f := strings.Fields(rest)
	if len(f) < 1 {
		fmt.Fprintln(c.out, "  usage: /complete KIND [key=value …] | /complete KIND fail [CODE]")
		return
	}
	kind := f[0]
	if !c.knownKind("/complete", kind) {
		return
	}
	m, ok := c.answer("/complete", f[1:])
	if !ok {
		return
	}
	rep, err := c.w.Complete(kind, m)
	if err != nil {
		fmt.Fprintf(c.out, "  %v (/mock %s pending holds the next one back)\n", err, kind)
		return
	}
	c.show(rep)
}

func (c *chat) knownKind(cmd, kind string) bool {
	for _, k := range sim.ActionKinds() {
		if k == kind {
			return true
		}
	}
	fmt.Fprintf(c.out, "  %s: unknown action %q (one of: %s)\n", cmd, kind, strings.Join(sim.ActionKinds(), ", "))
	return false
}

// answer reads `fail [CODE]` or `key=value …` (none: the default result).
func (c *chat) answer(cmd string, f []string) (sim.Mock, bool) {
	if len(f) > 0 && f[0] == "fail" {
		code := connectors.CodeBadRequest
		if len(f) > 1 {
			code = f[1]
		}
		return sim.Mock{Fail: &sim.Failure{Code: code, Message: "mocked failure"}}, true
	}
	res := map[string]any{}
	for _, kv := range f {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(c.out, "  %s: %q is not key=value\n", cmd, kv)
			return sim.Mock{}, false
		}
		res[k] = v
	}
	return sim.Mock{Result: res}, true
}

func (c *chat) event(rest string) {
	typ, js, _ := strings.Cut(rest, " ")
	if typ == "" {
		fmt.Fprintln(c.out, "  usage: /event TYPE [JSON data]")
		return
	}
	data := map[string]any{}
	if js = strings.TrimSpace(js); js != "" {
		if err := json.Unmarshal([]byte(js), &data); err != nil {
			fmt.Fprintf(c.out, "  /event: the data is not a JSON object: %v\n", err)
			return
		}
	}
	var keys []string
	if d := c.dialog(); d != nil {
		keys = d.Keys
	}
	c.show(c.inject(c.w.Builder.Raw(typ, keys, event.Contact{}, "", data), nil))
}

// show prints what a step did, as the customer and the operator see it.
func (c *chat) show(rep *sim.Report) {
	if rep.Err != nil {
		fmt.Fprintf(c.out, "  ! %v\n", rep.Err)
	}
	for i, p := range rep.Events {
		if !routine(i, p) {
			c.event1(i, p)
		}
		if a := p.Completed; a != nil && a.Kind == "send" {
			c.action(a) // the message the customer gets now
		}
		for _, l := range p.Logs {
			fmt.Fprintf(c.out, "  log: %s\n", l)
		}
		for _, a := range p.Actions {
			c.action(a)
		}
	}
	c.status()
}

// routine reports whether p is an action result that changed nothing worth a
// line: ignored, taken without a transition, or arriving after the dialog ended.
func routine(i int, p *sim.Processed) bool {
	if i == 0 || p.Event.Source != event.SourceAction || p.From != p.To || p.Err != nil {
		return false
	}
	switch p.Outcome {
	case sim.OutcomeIgnored, sim.OutcomeHandled:
		return true
	case sim.OutcomeUnhandled:
		return p.Status != string(dialog.Active) && p.Status != string(dialog.Handoff)
	}
	return false
}

func (c *chat) event1(i int, p *sim.Processed) {
	switch {
	case p.Outcome == sim.OutcomeUnrouted:
		fmt.Fprintf(c.out, "  · %s: no dialog and no flow takes it (unrouted)\n", p.Event.Type)
	case p.Outcome == sim.OutcomeDuplicate:
		fmt.Fprintf(c.out, "  · %s: duplicate, dropped\n", p.Event.Type)
	case p.Err != nil:
		fmt.Fprintf(c.out, "  ! runtime error on %s: %v (the dialog is unchanged)\n", p.Event.Type, p.Err)
	case i == 0 && p.Event.Source != event.SourceTimer && p.Completed == nil && p.Outcome == sim.OutcomeHandled:
		// The customer's own message: the replies below say enough.
	default:
		fmt.Fprintf(c.out, "  · %s\n", sim.DescribeProcessed(p))
	}
}

func (c *chat) action(a *sim.Action) {
	if a.Pending && !a.Answered() {
		fmt.Fprintf(c.out, "  action %s %s → pending (/complete %s …)\n", a.Kind, sim.Show(a.Params), a.Kind)
		return
	}
	if a.Kind != "send" || a.Message == nil {
		res := "→ " + sim.Show(a.Result)
		if a.Failure != nil {
			res = "→ " + sim.FailureText(a.Failure.Code, a.Failure.Status, a.Failure.Message)
		}
		fmt.Fprintf(c.out, "  action %s %s %s\n", a.Kind, sim.Show(a.Params), res)
		return
	}
	m := a.Message
	if a.Failure != nil {
		fmt.Fprintf(c.out, "  bot ✗ not delivered (%s): %s\n", sim.FailureText(a.Failure.Code, a.Failure.Status, a.Failure.Message), sim.Quote(m.Text))
		return
	}
	if m.Template != nil {
		fmt.Fprintf(c.out, "  bot: %s\n", sim.DescribeMessage(m))
		return
	}
	fmt.Fprintf(c.out, "  bot: %s\n", strings.ReplaceAll(m.Text, "\n", "\n       "))
	if ch := m.Choices(); len(ch) > 0 {
		c.choices, c.list = ch, len(m.Buttons) == 0
		if c.list {
			fmt.Fprintf(c.out, "       [%s]\n", m.ListButton)
		}
		for i, x := range ch {
			line := fmt.Sprintf("       %d) %s", i+1, x.Title)
			if x.Description != "" {
				line += " — " + x.Description
			}
			fmt.Fprintln(c.out, line)
		}
	}
}

func (c *chat) status() {
	d := c.dialog()
	if d == nil {
		fmt.Fprintln(c.out, "  [no dialog]")
		return
	}
	fmt.Fprintf(c.out, "  [dialog %d · %s · %s]  %s\n", d.ID, d.State, d.Status, sim.VarsText(d, c.w.Flow(d)))
}

func (c *chat) history() {
	if c.cur == 0 {
		fmt.Fprintln(c.out, "  (no dialog yet)")
		return
	}
	for _, h := range c.w.History(c.cur) {
		s := "  " + string(h.Kind)
		if h.FromState != "" || h.ToState != "" {
			s += " " + h.FromState + " → " + h.ToState
		}
		var detail map[string]any
		if json.Unmarshal(h.Detail, &detail) == nil && len(detail) > 0 {
			s += " " + sim.Show(detail)
		}
		fmt.Fprintln(c.out, s)
	}
}
