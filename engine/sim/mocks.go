package sim

import (
	"context"
	"strconv"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/telegram"
	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine"
)

// Mock is a scripted outcome of an outbound action: result fields merged over the
// default result, or a failure; or, with Pending, no result yet: the action's
// result is held back until World.Complete delivers it.
type Mock struct {
	Result  map[string]any
	Fail    *Failure
	Pending bool
}

// Mocks is the table that answers outbound actions, per action kind: a standing
// answer ("from now on") and a queue of one-shot answers used first. Kinds without
// an entry get the defaults: send → {message_id: "wamid.sim.N", via},
// okdesk.create_issue → {id: "1001", "1002", …, contact_id: "1"},
// okdesk.find_or_create_contact → {contact_id: "1"}, anything else → {}.
type Mocks struct {
	always map[string]*Mock
	once   map[string][]*Mock
}

// NewMocks returns an empty table: every action gets its default.
func NewMocks() *Mocks {
	return &Mocks{always: map[string]*Mock{}, once: map[string][]*Mock{}}
}

// Set makes m the answer to every later action of kind (after any one-shot answers).
func (t *Mocks) Set(kind string, m Mock) { t.always[kind] = &m }

// Once makes m the answer to the next action of kind only.
func (t *Mocks) Once(kind string, m Mock) { t.once[kind] = append(t.once[kind], &m) }

// Reset gives kind its default answer again.
func (t *Mocks) Reset(kind string) {
	delete(t.always, kind)
	delete(t.once, kind)
}

func (t *Mocks) take(kind string) *Mock {
	if q := t.once[kind]; len(q) > 0 {
		t.once[kind] = q[1:]
		return q[0]
	}
	return t.always[kind]
}

// err is the failure as a connector reports it: final, not retried.
func (f *Failure) err(connector string) *connectors.Error {
	return &connectors.Error{Connector: connector, Code: f.Code, Message: f.Message, Status: f.Status}
}

// registry is the world's connectors: messages go through the real WhatsApp and
// Telegram clients without credentials (so they are built, checked against the
// channel's limits and WhatsApp's 24-hour window, and not sent); every other action
// answers its documented default.
type registry struct {
	*connectors.Registry
	nSend, nIssue int
}

func newRegistry(*Mocks) *registry {
	r := &registry{Registry: connectors.NewRegistry()}
	tg, err := telegram.New(telegram.Config{})
	if err != nil {
		panic(err) // an empty configuration is always valid
	}
	for _, s := range []connectors.Sender{waba.New(waba.Config{}), tg} {
		if err := r.RegisterSender(s); err != nil {
			panic(err)
		}
	}
	var kinds []string
	for _, a := range engine.Actions {
		if !a.Local && a.Name != "send" {
			kinds = append(kinds, a.Name)
		}
	}
	if err := r.Register(defaults{r: r, kinds: kinds}); err != nil {
		panic(err)
	}
	return r
}

// defaults answers every action but send with its default result.
type defaults struct {
	r     *registry
	kinds []string
}

func (d defaults) Kinds() []string { return d.kinds }

func (d defaults) Execute(_ context.Context, req connectors.Request) (connectors.Result, error) {
	switch req.Kind {
	case "okdesk.create_issue":
		d.r.nIssue++
		return connectors.Result{Data: map[string]any{"id": strconv.Itoa(1000 + d.r.nIssue), "contact_id": "1"}}, nil
	case "okdesk.find_or_create_contact":
		return connectors.Result{Data: map[string]any{"contact_id": "1"}}, nil
	}
	return connectors.Result{Data: map[string]any{}}, nil
}

// sent turns a send's dry-run answer (the request it would have made) into what
// the channel answers when the message goes out: its message id and how it went.
func (r *registry) sent(channel, contact string, res connectors.Result) connectors.Result {
	r.nSend++
	data := map[string]any{"via": res.Data["via"]}
	switch channel {
	case "telegram":
		data["message_id"], data["chat_id"] = strconv.Itoa(r.nSend), contact
	default:
		data["message_id"] = "wamid.sim." + strconv.Itoa(r.nSend)
	}
	return connectors.Result{Data: data}
}
