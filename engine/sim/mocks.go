package sim

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
