package processor

import (
	"context"
	"fmt"
	"time"

	"github.com/fixit-exchange/fixit/engine"
)

// StrandCheck refuses a flow set that would move live dialogs into states it does
// not have. Only flows that declare `migrate` move their dialogs; the others keep
// them on the version they started on, which is never stranded. It is meant as
// engine.Holder's Check.
func (p *Processor) StrandCheck(_, next *engine.FlowSet) engine.Diagnostics {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var diags engine.Diagnostics
	for _, f := range next.Flows() {
		if f.Migrate == nil {
			continue
		}
		waiting, err := p.st.WaitingDialogs(ctx, f.Name, f.Hash)
		if err != nil {
			diags = append(diags, engine.Diagnostic{File: f.File, Line: f.Pos.Line, Col: f.Pos.Col, Severity: engine.SevError,
				Code: engine.CodeStrandedDialogs, Message: fmt.Sprintf("cannot check the live dialogs of %s: %v", f.Name, err),
				Hint: "the database must answer before dialogs can move to a new version"})
			continue
		}
		stranded := map[string]int64{}
		var order []string
		for _, w := range waiting {
			if _, ok := f.MigrateTarget(w.State); !ok {
				if stranded[w.State] == 0 {
					order = append(order, w.State)
				}
				stranded[w.State] += w.Count
			}
		}
		for _, state := range order {
			diags = append(diags, engine.Diagnostic{File: f.File, Line: f.Pos.Line, Col: f.Pos.Col, Severity: engine.SevError,
				Code:    engine.CodeStrandedDialogs,
				Message: fmt.Sprintf("%d live dialog(s) of %s wait in state %q, which this version does not have", stranded[state], f.Name, state),
				Hint:    fmt.Sprintf("map it under `migrate: { %s: <state> }`, keep the state, or remove `migrate` to leave them on their version", state)})
		}
	}
	return diags
}

// Adopt moves the live dialogs of every flow of fs that declares `migrate` to its
// version there. Call it after a new set is in place (start-up and reload).
func (p *Processor) Adopt(ctx context.Context, fs *engine.FlowSet) error {
	for _, f := range fs.Flows() {
		if f.Migrate == nil {
			continue
		}
		n, err := p.st.AdoptDialogs(ctx, f.Name, f.Hash, f.Migrate)
		if err != nil {
			return err
		}
		if n > 0 {
			// The moves bypassed the steps: a step that writes a moved dialog would
			// fail its revision check, but one that does not (an event the old state
			// ignores) would go on from the old version.
			p.dialogs.clear()
			p.log.Info("live dialogs moved to the new flow version", "flow", f.Name, "version", f.Hash[:12], "dialogs", n)
		}
	}
	return nil
}
