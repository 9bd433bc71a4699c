package processor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/store"
)

// Reload loads the flow files again and, when they are valid and differ from the
// set in service, puts the new set in service as one operation: everything that
// can fail is done before the swap — the files are loaded and checked, the set is
// checked against the live dialogs (a flow that declares `migrate` must not move
// dialogs into states it lacks), every version is stored, and the live dialogs of
// those flows are moved to their new version, in one transaction — and then one
// pointer is swapped, while no step is under way. On any error nothing is stored
// or moved, the old set keeps serving and the report says why.
//
// With dryRun nothing is stored, moved or swapped: the report says what a reload
// would do (its diagnostics, the flows added, changed and removed, the dialogs
// that would be stranded or moved).
func (p *Processor) Reload(ctx context.Context, dryRun bool) engine.ReloadReport {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	holder := p.cfg.Flows
	next, rep := holder.Prepare()
	rep.DryRun = dryRun
	if next != nil {
		if err := p.checkMigrations(ctx, next, &rep); err != nil {
			refuse(&rep, next, engine.CodeStrandedDialogs, "cannot check the live dialogs: "+err.Error(), "the database must answer before dialogs can move to a new version")
		}
	}
	if rep.Diagnostics.HasErrors() {
		rep.Result, next = engine.ReloadError, nil
	}
	if dryRun {
		return rep
	}
	if next != nil {
		// Steps wait while the set changes: none plans on a dialog read before the
		// move and commits after it, or runs on a version the swap replaces.
		p.swap.Lock()
		err := p.install(ctx, next)
		if err != nil {
			refuse(&rep, next, engine.CodeReloadFailed, err.Error(), "the old flows keep serving; check the database, then reload again")
			rep.Result, next = engine.ReloadError, nil
		}
		holder.Commit(next, rep)
		p.swap.Unlock()
	} else {
		holder.Commit(next, rep)
	}
	p.report(rep)
	if p.cfg.Observer != nil {
		p.cfg.Observer.Reloaded(rep)
	}
	return rep
}

// install stores the versions of a set about to go into service and moves the
// live dialogs of its flows that declare `migrate`, all in one transaction: on an
// error nothing is stored or moved. The dialogs moved are changed behind the
// dialog cache, which is cleared.
func (p *Processor) install(ctx context.Context, fs *engine.FlowSet) error {
	moved := map[string]int64{}
	err := p.st.Step(ctx, func(tx store.StepTx) error {
		clear(moved) // a step may be run again
		for _, f := range fs.Flows() {
			if err := tx.SaveFlowVersion(store.FlowVersion{Hash: f.Hash, Flow: f.Name, File: f.File, Source: string(f.Source)}); err != nil {
				return fmt.Errorf("store flow version %s: %w", f.Name, err)
			}
		}
		for _, f := range fs.Flows() {
			if f.Migrate == nil {
				continue
			}
			n, err := tx.AdoptDialogs(f.Name, f.Hash, f.Migrate)
			if err != nil {
				return fmt.Errorf("move live dialogs of %s to its new version: %w", f.Name, err)
			}
			moved[f.Name] = n
		}
		return nil
	})
	if err != nil {
		return err
	}
	total := int64(0)
	for _, f := range fs.Flows() {
		if n := moved[f.Name]; n > 0 {
			p.log.Info("live dialogs moved to the new flow version", "flow", f.Name, "version", f.Hash[:12], "dialogs", n)
			total += n
		}
	}
	if total > 0 {
		// A cached dialog would go on from its old version until a write of it
		// failed its revision check (and one that writes nothing, never would).
		p.dialogs.clear()
	}
	return nil
}

// checkMigrations counts the live dialogs each flow of next that declares `migrate`
// would move, and refuses the set when any would land in a state the new version
// lacks. Flows without `migrate` keep their dialogs on the version they started on,
// which is never stranded.
func (p *Processor) checkMigrations(ctx context.Context, next *engine.FlowSet, rep *engine.ReloadReport) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, f := range next.Flows() {
		if f.Migrate == nil {
			continue
		}
		waiting, err := p.st.WaitingDialogs(ctx, f.Name, f.Hash)
		if err != nil {
			return fmt.Errorf("flow %s: %w", f.Name, err)
		}
		stranded, moved := map[string]int64{}, map[string]int64{}
		flipped := int64(0)
		for _, w := range waiting {
			// A dialog's keys are bound in its flow's scope (ordinary, or the alongside
			// flow's own): moved to a version that changes `alongside`, it would hold
			// keys the routing no longer looks for.
			if old, err := p.core.Version(ctx, f.Name, w.Hash); err == nil && old.Alongside != f.Alongside {
				flipped += w.Count
				continue
			}
			if _, ok := f.MigrateTarget(w.State); ok {
				moved[w.State] += w.Count
			} else {
				stranded[w.State] += w.Count
			}
		}
		for _, state := range slices.Sorted(maps.Keys(stranded)) {
			rep.Stranded = append(rep.Stranded, engine.StateCount{Flow: f.Name, State: state, Dialogs: stranded[state]})
			rep.Diagnostics = append(rep.Diagnostics, engine.Diagnostic{File: f.File, Line: f.Pos.Line, Col: f.Pos.Col,
				Severity: engine.SevError, Code: engine.CodeStrandedDialogs,
				Message: fmt.Sprintf("%d live dialog(s) of %s wait in state %q, which this version does not have", stranded[state], f.Name, state),
				Hint:    fmt.Sprintf("map it under `migrate: { %s: <state> }`, keep the state, or remove `migrate` to leave them on their version", state)})
		}
		if flipped > 0 {
			rep.Diagnostics = append(rep.Diagnostics, engine.Diagnostic{File: f.File, Line: f.Pos.Line, Col: f.Pos.Col,
				Severity: engine.SevError, Code: engine.CodeStrandedDialogs,
				Message: fmt.Sprintf("%d live dialog(s) of %s run a version with alongside: %v, and this version changes it: their correlation keys are held in the other scope", flipped, f.Name, !f.Alongside),
				Hint:    "remove `migrate` to leave them on their version (new dialogs use this one), or change `alongside` once they have ended"})
		}
		for _, state := range slices.Sorted(maps.Keys(moved)) {
			rep.Migrated = append(rep.Migrated, engine.StateCount{Flow: f.Name, State: state, Dialogs: moved[state]})
		}
	}
	rep.Diagnostics.Sort()
	return nil
}

// refuse adds an error diagnostic about the whole set (at its first flow).
func refuse(rep *engine.ReloadReport, fs *engine.FlowSet, code, msg, hint string) {
	d := engine.Diagnostic{Line: 1, Col: 1, Severity: engine.SevError, Code: code, Message: msg, Hint: hint}
	if flows := fs.Flows(); len(flows) > 0 {
		d.File, d.Line, d.Col = flows[0].File, flows[0].Pos.Line, flows[0].Pos.Col
	}
	rep.Diagnostics = append(rep.Diagnostics, d)
}

// report counts and logs a reload.
func (p *Processor) report(rep engine.ReloadReport) {
	if p.met != nil {
		p.met.Reloads.WithLabelValues(rep.Result).Inc()
	}
	switch rep.Result {
	case engine.ReloadError:
		for _, d := range rep.Diagnostics {
			if d.Severity == engine.SevError {
				p.log.Error("flows refused", "file", d.File, "line", d.Line, "col", d.Col, "code", d.Code, "message", d.Message)
			}
		}
	case engine.ReloadOK:
		for _, d := range rep.Diagnostics {
			p.log.Warn("flow diagnostic", "file", d.File, "line", d.Line, "col", d.Col, "severity", string(d.Severity),
				"code", d.Code, "message", d.Message)
		}
		p.log.Info("flows loaded", "added", rep.Added, "changed", rep.Changed, "removed", rep.Removed)
	default:
		p.log.Info("flows unchanged")
	}
}
