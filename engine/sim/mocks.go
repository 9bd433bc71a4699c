package sim

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/connectors/telegram"
	"github.com/fixit-exchange/fixit/connectors/waba"
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
// It is safe for concurrent use (a processor's outbox workers read it).
type Mocks struct {
	mu     sync.Mutex
	always map[string]*Mock
	once   map[string][]*Mock
}

// NewMocks returns an empty table: every action gets its default.
func NewMocks() *Mocks {
	return &Mocks{always: map[string]*Mock{}, once: map[string][]*Mock{}}
}

// Set makes m the answer to every later action of kind (after any one-shot answers).
func (t *Mocks) Set(kind string, m Mock) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.always[kind] = &m
}

// Once makes m the answer to the next action of kind only.
func (t *Mocks) Once(kind string, m Mock) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.once[kind] = append(t.once[kind], &m)
}

// Reset gives kind its default answer again.
func (t *Mocks) Reset(kind string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.always, kind)
	delete(t.once, kind)
}

func (t *Mocks) take(kind string) *Mock {
	t.mu.Lock()
	defer t.mu.Unlock()
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

// errHeld is the answer to a call a pending mock holds back, in a world that does
// not block (World): the action has no outcome yet.
var errHeld = errors.New("held back by a pending mock")

// Connectors are the outbound connectors of a test world. Messages go through the
// real WhatsApp and Telegram clients without credentials, so they are built and
// checked against the channel's limits and WhatsApp's 24-hour window, and not sent;
// every other action answers its documented default. The mock table answers first.
// The same Connectors can serve the real processor (the agreement test), whose
// outbox workers wait, blocked, for a held-back result.
type Connectors struct {
	reg   *connectors.Registry // what the core performs through: this, in front of inner
	inner *connectors.Registry // the dry-run clients and the defaults
	mocks *Mocks
	block bool // a held-back call waits for Complete instead of returning errHeld

	mu            sync.Mutex
	nSend, nIssue int
	messages      map[string]*Message // by action id: what each send built
	held          []*heldCall         // calls held back, oldest first
	answers       map[string]*Mock    // by action id: the answer Complete gave a held call
	files         connectors.Files    // where fetched files go (UseFiles)
	content       func(source, ref string) ([]byte, bool)
}

// heldCall is an action whose result a pending mock holds back.
type heldCall struct {
	id, kind string
	answer   chan Mock // blocking Connectors: Complete sends the answer here
}

// NewConnectors returns the connectors of a world answering from mocks; with block,
// a held-back call waits for Complete (for a processor's outbox worker).
func NewConnectors(mocks *Mocks, block bool) *Connectors {
	c := &Connectors{reg: connectors.NewRegistry(), inner: connectors.NewRegistry(), mocks: mocks, block: block,
		messages: map[string]*Message{}, answers: map[string]*Mock{}}
	tg, err := telegram.New(telegram.Config{})
	if err != nil {
		panic(err) // an empty configuration is always valid
	}
	kinds := slices.DeleteFunc(ActionKinds(), func(k string) bool { return k == "send" || k == connectors.KindFetch })
	for _, s := range []connectors.Sender{waba.New(waba.Config{}), tg} {
		must(c.inner.RegisterSender(s))
		must(c.reg.RegisterSender(mocked{c: c, channel: s.Channel()}))
	}
	must(c.inner.Register(defaults{c: c, kinds: kinds}))
	must(c.reg.Register(mocked{c: c, kinds: kinds}))
	for _, src := range []string{"waba", "telegram", "okdesk"} {
		must(c.reg.RegisterFetcher(fetcher{c: c, source: src}))
	}
	return c
}

func must(err error) {
	if err != nil {
		panic(err) // registering distinct kinds once cannot fail
	}
}

// ActionKinds lists every outbound action kind the connectors fixit ships perform,
// "send" first, and file.fetch (a message's download, which a scenario can mock)
// last.
func ActionKinds() []string { return slices.Clone(actionKinds()) }

var actionKinds = sync.OnceValue(func() []string {
	return append(append([]string{"send"}, registry.DryRun().Kinds()...), connectors.KindFetch)
})

// Registry is what the core performs actions through.
func (c *Connectors) Registry() *connectors.Registry { return c.reg }

// Message returns what the send with action id id built (nil for another action).
func (c *Connectors) Message(id int64) *Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.messages[strconv.FormatInt(id, 10)]
}

// Held returns the ids and kinds of the calls held back, oldest first.
func (c *Connectors) Held() (ids []int64, kinds []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.held {
		id, _ := strconv.ParseInt(h.id, 10, 64)
		ids, kinds = append(ids, id), append(kinds, h.kind)
	}
	return ids, kinds
}

// Release gives the oldest held-back call of kind its answer m (m.Pending is
// ignored) and returns its action id; false when none of kind is held. A blocked
// call goes on at once; in a world that does not block, performing the action again
// gets m.
func (c *Connectors) Release(kind string, m Mock) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.held, func(h *heldCall) bool { return h.kind == kind })
	if i < 0 {
		return 0, false
	}
	h := c.held[i]
	c.held = slices.Delete(c.held, i, i+1)
	m.Pending = false
	if h.answer != nil {
		h.answer <- m
	} else {
		c.answers[h.id] = &m
	}
	id, _ := strconv.ParseInt(h.id, 10, 64)
	return id, true
}

// ReleaseAll fails every held-back call, so that blocked callers return (when a
// driver stops).
func (c *Connectors) ReleaseAll() {
	for {
		c.mu.Lock()
		if len(c.held) == 0 {
			c.mu.Unlock()
			return
		}
		kind := c.held[0].kind
		c.mu.Unlock()
		c.Release(kind, Mock{Fail: &Failure{Code: "network", Message: "the test world stopped"}})
	}
}

// mocked answers an action from the mock table, then from the dry-run clients and
// the defaults.
type mocked struct {
	c       *Connectors
	kinds   []string
	channel string
}

func (m mocked) Kinds() []string { return m.kinds }
func (m mocked) Channel() string { return m.channel }
func (m mocked) Execute(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	return m.c.execute(ctx, req)
}

func (c *Connectors) execute(ctx context.Context, req connectors.Request) (connectors.Result, error) {
	mock, err := c.answer(ctx, req)
	if err != nil {
		return connectors.Result{}, err
	}
	return c.perform(ctx, req, mock)
}

// mockOnly answers an action that only the mock table decides (file.fetch): a
// failure, or nothing; a pending mock holds it back as it does any action.
func (c *Connectors) mockOnly(ctx context.Context, req connectors.Request) error {
	mock, err := c.answer(ctx, req)
	if err != nil {
		return err
	}
	if mock != nil && mock.Fail != nil {
		return mock.Fail.err(connectors.ConnectorOf(req.Kind, ""))
	}
	return nil
}

// answer takes the mock answering req, waiting (or reporting errHeld) when a
// pending mock holds it back.
func (c *Connectors) answer(ctx context.Context, req connectors.Request) (*Mock, error) {
	c.mu.Lock()
	mock, answered := c.answers[req.ID]
	delete(c.answers, req.ID)
	if !answered {
		mock = c.mocks.take(req.Kind)
	}
	var h *heldCall
	if mock != nil && mock.Pending {
		h = &heldCall{id: req.ID, kind: req.Kind}
		if c.block {
			h.answer = make(chan Mock, 1)
		}
		c.held = append(c.held, h)
	}
	c.mu.Unlock()
	if h != nil {
		if !c.block {
			return nil, errHeld
		}
		select {
		case m := <-h.answer:
			mock = &m
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return mock, nil
}

// perform answers req with mock, then the dry-run clients and the defaults.
func (c *Connectors) perform(ctx context.Context, req connectors.Request, mock *Mock) (connectors.Result, error) {
	channel := req.Dialog.Channel
	if mock != nil && mock.Fail != nil && req.Kind != "send" {
		return connectors.Result{}, mock.Fail.err(connectors.ConnectorOf(req.Kind, channel)) // a failed call creates nothing: no issue number is used up
	}
	// A send is built and checked against the window even when mocked.
	res, err := c.inner.Execute(ctx, req)
	if req.Kind == "send" {
		msg := messageOf(channel, req.Params, res.Data)
		c.mu.Lock()
		c.messages[req.ID] = msg
		if err == nil {
			res = c.sent(channel, req.Dialog.ContactID, res)
		}
		c.mu.Unlock()
	}
	switch {
	case err != nil || mock == nil:
	case mock.Fail != nil:
		err = mock.Fail.err(connectors.ConnectorOf(req.Kind, channel))
	default:
		for k, v := range mock.Result {
			res.Data[k] = v
		}
	}
	return res, err
}

// defaults answers every action but send with its default result.
type defaults struct {
	c     *Connectors
	kinds []string
}

func (d defaults) Kinds() []string { return d.kinds }

func (d defaults) Execute(_ context.Context, req connectors.Request) (connectors.Result, error) {
	switch req.Kind {
	case "okdesk.create_issue":
		d.c.mu.Lock()
		d.c.nIssue++
		id := strconv.Itoa(1000 + d.c.nIssue)
		d.c.mu.Unlock()
		return connectors.Result{Data: map[string]any{"id": id, "contact_id": "1"}}, nil
	case "okdesk.find_or_create_contact":
		return connectors.Result{Data: map[string]any{"contact_id": "1"}}, nil
	}
	return connectors.Result{Data: map[string]any{}}, nil
}

// sent turns a send's dry-run answer (the request it would have made) into what
// the channel answers when the message goes out: its message id and how it went.
func (c *Connectors) sent(channel, contact string, res connectors.Result) connectors.Result {
	c.nSend++
	data := map[string]any{"via": res.Data["via"]}
	switch channel {
	case "telegram":
		data["message_id"], data["chat_id"] = strconv.Itoa(c.nSend), contact
	default:
		data["message_id"] = "wamid.sim." + strconv.Itoa(c.nSend)
	}
	return connectors.Result{Data: data}
}
