package engine

import (
	"fmt"

	"github.com/fixit-exchange/fixit/connectors"
)

// Catalog is what a flow file is checked against beyond the language itself: the
// actions — the interpreter's own and those of the connectors in a registry, as
// each connector describes them beside its executor — and the limits of each
// channel a message can go out on.
type Catalog struct {
	actions  []*ActionSpec
	names    []string
	index    map[string]*ActionSpec
	channels []connectors.Channel
}

// paramTypes are the parameter types the loader can compile.
var paramTypes = map[ValueType]bool{TTemplate: true, TString: true, TInt: true, TBool: true, TDuration: true,
	TAny: true, TTemplates: true, TButtons: true, TList: true, TWATemplate: true, TEventTypes: true,
	TFile: true, TFiles: true}

// NewCatalog reads the actions and channels of reg. It fails on a spec the
// loader cannot check against (a programmer error in a connector).
func NewCatalog(reg *connectors.Registry) (*Catalog, error) {
	c := &Catalog{index: map[string]*ActionSpec{}, channels: reg.Channels()}
	add := func(a ActionSpec) error {
		if c.index[a.Name] != nil {
			return fmt.Errorf("catalog: action %s is described twice", a.Name)
		}
		for _, p := range a.Params {
			if !paramTypes[p.Type] {
				return fmt.Errorf("catalog: action %s: parameter %s has type %q, which flow files cannot write", a.Name, p.Name, p.Type)
			}
		}
		c.actions = append(c.actions, &a)
		c.names = append(c.names, a.Name)
		c.index[a.Name] = &a
		return nil
	}
	for _, a := range reg.Actions() {
		spec := ActionSpec{Name: a.Name, Doc: a.Doc, Shorthand: a.Shorthand}
		for _, p := range a.Params {
			spec.Params = append(spec.Params, Field{Name: p.Name, Type: ValueType(p.Type), Required: p.Required, Enum: p.Enum, Doc: p.Doc, MaxLen: p.MaxLen})
		}
		if err := add(spec); err != nil {
			return nil, err
		}
	}
	for _, a := range LocalActions {
		if err := add(a); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// MustLoader is NewLoader for the registries fixit builds itself, whose specs
// are part of the program: it panics when they do not load (a programmer error).
func MustLoader(reg *connectors.Registry) *Loader {
	l, err := NewLoader(reg)
	if err != nil {
		panic(fmt.Sprintf("engine: the connectors' specs do not load: %v", err))
	}
	return l
}

// Actions lists the actions a flow may write: the outbound ones in the
// registry's order, then the local ones.
func (c *Catalog) Actions() []*ActionSpec { return c.actions }

// Action returns the spec of an action, or nil.
func (c *Catalog) Action(name string) *ActionSpec { return c.index[name] }

// Channels lists the channels "send" may go out on, with their limits.
func (c *Catalog) Channels() []connectors.Channel { return c.channels }

func (c *Catalog) actionNames() []string { return c.names }
