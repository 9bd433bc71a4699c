package sim

import (
	"errors"
	"fmt"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
)

// input is what a step does to the world.
type input interface {
	apply(r *runner) (*Report, error)
}

// runner runs one scenario.
type runner struct {
	w   *World
	sc  *Scenario
	cur *Dialog
	// last holds the last message with choices each contact got, so a step may tap
	// a button by its title or its id.
	last map[string]*Message
}

func (r *runner) inject(ev event.Event) *Report {
	rep := r.w.Inject(ev)
	if len(rep.Events) > 0 && rep.Events[0].Dialog != "" {
		r.cur = r.w.Dialog(rep.Events[0].Dialog)
	}
	return rep
}

func (r *runner) issue(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	if r.cur != nil {
		if id := r.cur.Issue(); id != "" {
			return id, nil
		}
	}
	return "", errors.New("no issue given and the dialog is bound to no okdesk:issue key yet; write `issue: \"1542\"`")
}

type waText struct {
	from WhatsAppContact
	text string
}

func (s *waText) apply(r *runner) (*Report, error) {
	return r.inject(r.w.WhatsAppText(s.from, s.text)), nil
}

type waChoice struct {
	list            bool
	from            WhatsAppContact
	id, title, desc string
}

func (s *waChoice) apply(r *runner) (*Report, error) {
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
		return r.inject(r.w.WhatsAppList(s.from, id, title, desc)), nil
	}
	return r.inject(r.w.WhatsAppButton(s.from, id, title)), nil
}

type waMedia struct {
	from                    WhatsAppContact
	kind, caption, filename string
}

func (s *waMedia) apply(r *runner) (*Report, error) {
	return r.inject(r.w.WhatsAppMedia(s.from, s.kind, s.caption, s.filename)), nil
}

type waLocation struct {
	from          WhatsAppContact
	lat, lon      float64
	name, address string
}

func (s *waLocation) apply(r *runner) (*Report, error) {
	return r.inject(r.w.WhatsAppLocation(s.from, s.lat, s.lon, s.name, s.address)), nil
}

type tgText struct {
	chat TelegramChat
	text string
}

func (s *tgText) apply(r *runner) (*Report, error) {
	return r.inject(r.w.TelegramText(s.chat, s.text)), nil
}

type tgCallback struct {
	chat TelegramChat
	data string
}

func (s *tgCallback) apply(r *runner) (*Report, error) {
	return r.inject(r.w.TelegramCallback(s.chat, s.data)), nil
}

type okStatus struct {
	issue, status, old, phone string
}

func (s *okStatus) apply(r *runner) (*Report, error) {
	id, err := r.issue(s.issue)
	if err != nil {
		return nil, err
	}
	return r.inject(r.w.OkdeskStatus(OkdeskIssue{ID: id, Phone: s.phone}, s.status, s.old)), nil
}

type okComment struct {
	issue, text, author, phone string
	public                     bool
}

func (s *okComment) apply(r *runner) (*Report, error) {
	id, err := r.issue(s.issue)
	if err != nil {
		return nil, err
	}
	return r.inject(r.w.OkdeskComment(OkdeskIssue{ID: id, Phone: s.phone}, s.text, s.public, s.author)), nil
}

type onecPayment struct {
	p    Payment
	auto bool // neither issue nor phone given: the dialog's issue and the contact's phone
}

func (s *onecPayment) apply(r *runner) (*Report, error) {
	p := s.p
	if s.auto {
		if r.cur != nil {
			p.OkdeskIssueID = r.cur.Issue()
		}
		p.Phone = r.sc.Contact.Phone
	}
	return r.inject(r.w.OneCPayment(p)), nil
}

type raw struct {
	typ, text string
	keys      []string
	contact   event.Contact
	data      map[string]any
}

func (s *raw) apply(r *runner) (*Report, error) {
	data := map[string]any{}
	for k, v := range s.data {
		data[k] = v
	}
	return r.inject(r.w.Raw(s.typ, s.keys, s.contact, s.text, data)), nil
}

type advance struct{ d time.Duration }

func (s *advance) apply(r *runner) (*Report, error) { return r.w.Advance(s.d), nil }

type mockEntry struct {
	kind  string
	mock  Mock
	once  bool
	reset bool
}

type mockStep struct{ entries []mockEntry }

func (s *mockStep) apply(r *runner) (*Report, error) {
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
	return &Report{}, nil
}

type completeEntry struct {
	kind string
	mock Mock
}

// complete delivers the results that pending mocks held back, in the order written.
type complete struct{ entries []completeEntry }

func (s *complete) apply(r *runner) (*Report, error) {
	rep := &Report{}
	for _, e := range s.entries {
		one, err := r.w.Complete(e.kind, e.mock)
		if err != nil {
			return nil, fmt.Errorf("%w; hold its result back first: `mock: { %s: pending }` before the step that makes the action", err, e.kind)
		}
		rep.Events = append(rep.Events, one.Events...)
	}
	return rep, nil
}

type handback struct{}

func (s *handback) apply(r *runner) (*Report, error) {
	if r.cur == nil {
		return nil, errors.New("handback: no dialog yet")
	}
	return &Report{}, r.w.Handback(r.cur.ID)
}
