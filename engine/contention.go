package engine

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// contention finds flows of the set that would fight over an event:
//
//   - two ordinary flows start on the same event type and the one tried first
//     (higher priority, then file name) has no `when`: the other never starts on
//     that type (start-shadowed);
//   - an alongside flow replies to the customer (`send`) on a message type that an
//     ordinary flow takes too: the customer would get two answers to one message
//     (alongside-replies).
//
// Both are warnings: the set works, but not as its author probably meant.
func (fs *FlowSet) contention() Diagnostics {
	var out Diagnostics
	for i, b := range fs.ordered {
		for j, t := range b.StartOn {
			for _, a := range fs.ordered[:i] {
				if a.startWhen != nil || !slices.Contains(a.StartOn, t) {
					continue
				}
				why := "is tried first (higher priority)"
				if a.Priority == b.Priority {
					why = "is tried first (same priority, its file name sorts first)"
				}
				out = append(out, flowDiag(b, b.StartOnPos[j], t, CodeStartShadowed,
					fmt.Sprintf("flow %s never starts on %s: flow %s (%s) %s and starts on every %s without `when`", b.Name, t, a.Name, a.File, why, t)))
				break
			}
		}
	}
	for _, f := range fs.alongside {
		if !f.sends() {
			continue
		}
		for _, t := range []string{"waba.message", "telegram.message", "telegram.callback"} {
			if !f.Mentions(t) {
				continue
			}
			for _, o := range fs.ordered {
				if o.Mentions(t) {
					out = append(out, flowDiag(f, f.AlongsidePos, "true", CodeAlongsideReplies,
						fmt.Sprintf("alongside flow %s sends on %s, which flow %s takes too: one customer message would get an answer from each", f.Name, t, o.Name)))
					break
				}
			}
		}
	}
	return out
}

// sends reports whether any state of the flow has a `send` action.
func (f *Flow) sends() bool {
	for _, st := range f.States {
		if slices.ContainsFunc(st.Enter, isSend) {
			return true
		}
		branches := slices.Clone(st.Always)
		for _, bs := range st.On {
			branches = append(branches, bs...)
		}
		for _, t := range st.Timers {
			branches = append(branches, &t.Branch)
		}
		for _, b := range branches {
			if slices.ContainsFunc(b.Actions, isSend) {
				return true
			}
		}
	}
	return false
}

func isSend(a *Action) bool { return a.Kind == "send" }

// flowDiag is a warning of code at p in f's file, over a token of text's length.
func flowDiag(f *Flow, p Pos, text, code, msg string) Diagnostic {
	c := codeIndex[code]
	return Diagnostic{File: f.File, Line: p.Line, Col: p.Col, EndLine: p.Line, EndCol: p.Col + utf8.RuneCountInString(text),
		Severity: c.Severity, Code: code, Message: msg, Hint: c.Hint}
}
