package scenario

import (
	"errors"
	"fmt"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/sim"
	"github.com/fixit-exchange/fixit/engine/store"
)

// input is what a step does to the world.
type input interface {
	apply(r *runner) (*sim.Report, error)
}

// runner runs one scenario.
type runner struct {
	w   sim.Driver
	b   *sim.Builder
	sc  *Scenario
	cur int64 // the dialog the last inbound step reached
	// last holds the last message with choices each contact got, so a step may tap
	// a button by its title or its id.
	last map[string]*sim.Message
	// delivered holds the last WhatsApp send each contact (wa_id) got, for receipts.
	delivered map[string]*sim.Action
}

// dialog is the current dialog as stored now, or nil.
func (r *runner) dialog() *store.Dialog { return r.w.Dialog(r.cur) }

// inject delivers a notification the step built (err: it could not be built).
func (r *runner) inject(d sim.Delivery, err error) (*sim.Report, error) {
	if err != nil {
		return nil, err
	}
	rep := r.w.Deliver(d)
	if len(rep.Events) > 0 && rep.Events[0].Dialog != 0 {
		r.cur = rep.Events[0].Dialog
	}
	return rep, rep.Err
}

func (r *runner) issue(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if id := sim.IssueOf(r.dialog()); id != "" {
		return id, nil
	}
	return "", errors.New("no issue given and the dialog is bound to no okdesk:issue key yet; write `issue: \"1542\"`")
}

type waText struct {
	from sim.WhatsAppContact
	text string
}

func (s *waText) apply(r *runner) (*sim.Report, error) {
	return r.inject(r.b.WhatsAppText(s.from, s.text))
}

type waChoice struct {
	list            bool
	from            sim.WhatsAppContact
	id, title, desc string
}

func (s *waChoice) apply(r *runner) (*sim.Report, error) {
	id, title, desc := s.id, s.title, s.desc
	if m := r.last["waba:"+s.from.WAID()]; m != nil {
		for _, c := range m.Choices() {
			// A value written alone may be the choice's id or its title.
			if (id != "" && (c.ID == id || (title == "" && c.Title == id))) || (id == "" && c.Title == title) {
				id, title = c.ID, c.Title
				if desc == "" {
					desc = c.Description
				}
				break
			}
		}
	}
	if id == "" {
		id = title
	}
	if title == "" {
		title = id
	}
	if s.list {
		return r.inject(r.b.WhatsAppList(s.from, id, title, desc))
	}
	return r.inject(r.b.WhatsAppButton(s.from, id, title))
}

type waMedia struct {
	from                    sim.WhatsAppContact
	kind, caption, filename string
	content                 []byte
}

func (s *waMedia) apply(r *runner) (*sim.Report, error) {
	return r.inject(r.b.WhatsAppFile(s.from, s.kind, s.caption, s.filename, s.content))
}

type waLocation struct {
	from          sim.WhatsAppContact
	lat, lon      float64
	name, address string
}

func (s *waLocation) apply(r *runner) (*sim.Report, error) {
	return r.inject(r.b.WhatsAppLocation(s.from, s.lat, s.lon, s.name, s.address))
}

type waReceipt struct {
	from    sim.WhatsAppContact
	receipt sim.Receipt
}

func (s *waReceipt) apply(r *runner) (*sim.Report, error) {
	a := r.delivered[s.from.WAID()]
	if a == nil {
		return nil, fmt.Errorf("receipt: no WhatsApp message has been sent to %s yet", s.from.WAID())
	}
	rc := s.receipt
	rc.MessageID, _ = a.Result["message_id"].(string)
	c := s.from
	c.To = a.Message.From // the number it left from
	d, err := r.b.WhatsAppStatus(c, rc)
	if err != nil {
		return nil, err
	}
	// The status event is routed as the server routes it: inject does not make
	// its dialog the current one unless it reaches one.
	return r.inject(d, nil)
}

type tgText struct {
	chat sim.TelegramChat
	text string
}

func (s *tgText) apply(r *runner) (*sim.Report, error) {
	return r.inject(r.b.TelegramText(s.chat, s.text))
}

type tgCallback struct {
	chat sim.TelegramChat
	data string
}

func (s *tgCallback) apply(r *runner) (*sim.Report, error) {
	return r.inject(r.b.TelegramCallback(s.chat, s.data))
}

type okStatus struct {
	issue, status, old, phone string
}

func (s *okStatus) apply(r *runner) (*sim.Report, error) {
	id, err := r.issue(s.issue)
	if err != nil {
		return nil, err
	}
	return r.inject(r.b.OkdeskStatus(sim.OkdeskIssue{ID: id, Phone: s.phone}, s.status, s.old))
}

type okComment struct {
	issue, text, author, phone string
	public                     bool
	files                      []sim.File
}

func (s *okComment) apply(r *runner) (*sim.Report, error) {
	id, err := r.issue(s.issue)
	if err != nil {
		return nil, err
	}
	return r.inject(r.b.OkdeskComment(sim.OkdeskIssue{ID: id, Phone: s.phone}, s.text, s.public, s.author, s.files...))
}

type okFiles struct {
	issue, phone string
	public       bool
	file         sim.File
}

func (s *okFiles) apply(r *runner) (*sim.Report, error) {
	id, err := r.issue(s.issue)
	if err != nil {
		return nil, err
	}
	return r.inject(r.b.OkdeskFiles(sim.OkdeskIssue{ID: id, Phone: s.phone}, []sim.File{s.file}, s.public))
}

type onecPayment struct {
	p    sim.Payment
	auto bool // neither issue nor phone given: the dialog's issue and the contact's phone
}

func (s *onecPayment) apply(r *runner) (*sim.Report, error) {
	p := s.p
	if s.auto {
		p.OkdeskIssueID = sim.IssueOf(r.dialog())
		p.Phone = r.sc.Contact.Phone
	}
	return r.inject(r.b.OneCPayment(p))
}

type raw struct {
	typ, text string
	keys      []string
	contact   event.Contact
	data      map[string]any
}

func (s *raw) apply(r *runner) (*sim.Report, error) {
	data := map[string]any{}
	for k, v := range s.data {
		data[k] = v
	}
	return r.inject(r.b.Raw(s.typ, s.keys, s.contact, s.text, data), nil)
}

type advance struct{ d time.Duration }

func (s *advance) apply(r *runner) (*sim.Report, error) {
	rep := r.w.Advance(s.d)
	return rep, rep.Err
}

type mockEntry struct {
	kind  string
	mock  sim.Mock
	once  bool
	reset bool
}

type mockStep struct{ entries []mockEntry }

func (s *mockStep) apply(r *runner) (*sim.Report, error) {
	for _, e := range s.entries {
		switch {
		case e.reset:
			r.w.Mocks().Reset(e.kind)
		case e.once:
			r.w.Mocks().Once(e.kind, e.mock)
		default:
			r.w.Mocks().Set(e.kind, e.mock)
		}
	}
	return &sim.Report{}, nil
}

type completeEntry struct {
	kind string
	mock sim.Mock
}

// complete delivers the results that pending mocks held back, in the order written.
type complete struct{ entries []completeEntry }

func (s *complete) apply(r *runner) (*sim.Report, error) {
	rep := &sim.Report{}
	for _, e := range s.entries {
		one, err := r.w.Complete(e.kind, e.mock)
		if err != nil {
			return nil, fmt.Errorf("%w; hold its result back first: `mock: { %s: pending }` before the step that makes the action", err, e.kind)
		}
		rep.Events = append(rep.Events, one.Events...)
	}
	return rep, nil
}

// control is an operator's control of the current dialog, as the admin API
// checks and applies it (core.CheckControl).
type control struct{ c event.Control }

func (s *control) apply(r *runner) (*sim.Report, error) {
	if r.cur == 0 {
		return nil, fmt.Errorf("%s: no dialog yet", s.c.Kind)
	}
	c := s.c
	c.DialogID = r.cur
	if c.Operator == "" {
		c.Operator = "scenario"
	}
	return r.w.Control(c)
}

// retry is an operator's retry of the current dialog's last failed or dead action
// of a kind.
type retry struct{ kind string }

func (s *retry) apply(r *runner) (*sim.Report, error) {
	if r.cur == 0 {
		return nil, fmt.Errorf("retry: no dialog yet")
	}
	return r.w.Retry(r.cur, s.kind)
}
