package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/core"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/processor"
	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/server"
)

// controls are the processor's operator controls as the HTTP server asks for them.
type controls struct{ p *processor.Processor }

func (c controls) Control(ctx context.Context, ctl event.Control) (*store.Dialog, error) {
	a, err := c.p.Control(ctx, ctl)
	switch {
	case errors.Is(err, processor.ErrQueued):
		return nil, server.ErrQueued
	case err != nil:
		return nil, err
	}
	return a.Dialog, nil
}

func (c controls) RetryAction(ctx context.Context, id int64, by string) (*store.OutboxItem, error) {
	return c.p.RetryAction(ctx, id, by)
}

func (c controls) Redrive(ctx context.Context, seq int64, by string) (*store.Event, error) {
	return c.p.Redrive(ctx, seq, by)
}

// feed tells the live stream (GET /api/v1/stream) what the processor did, and
// passes it on to next (a test's observer; may be nil).
type feed struct {
	stream *server.Stream
	next   processor.Observer
}

func (f feed) Stepped(a *core.Applied) {
	c := server.Change{Type: server.ChangeDialog, At: a.Event.ReceivedAt.UTC(), Flow: a.Flow, Data: map[string]any{
		"event_id": a.Event.ID, "event_type": a.Event.Type, "outcome": string(a.Outcome)}}
	if a.Dialog != nil {
		c.DialogID = a.Dialog.ID
		c.Data["from"], c.Data["state"], c.Data["status"] = a.From, a.Dialog.State, string(a.Dialog.Status)
		c.Data["started"], c.Data["actions"] = a.Started, len(a.Actions)
	}
	if a.Err != nil {
		c.Data["error"] = a.Err.Error()
	}
	f.stream.Publish(c)
	if f.next != nil {
		f.next.Stepped(a)
	}
}

func (f feed) Settled(s core.Settlement) {
	c := server.Change{Type: server.ChangeAction, Flow: s.Flow, Data: map[string]any{
		"action_id": s.Item.ID, "kind": s.Item.Kind, "status": string(s.Status), "attempts": s.Item.Attempts}}
	if s.Item.DialogID != nil {
		c.DialogID = *s.Item.DialogID
	}
	if s.Error != nil {
		c.Data["error_code"] = s.Error.Code
	}
	f.stream.Publish(c)
	if f.next != nil {
		f.next.Settled(s)
	}
}

func (f feed) Reloaded(rep engine.ReloadReport) {
	f.stream.Publish(server.Change{Type: server.ChangeReload, At: rep.At, Data: map[string]any{
		"result": rep.Result, "added": rep.Added, "changed": rep.Changed, "removed": rep.Removed,
		"errors": countErrors(rep.Diagnostics)}})
	if f.next != nil {
		f.next.Reloaded(rep)
	}
}

// parsePeople reads a list of people's tokens, "name:token,name:token" (the
// value of FIXIT_OPERATORS or FIXIT_VIEWERS). Errors name the variable and the
// entry's position, never a token.
func parsePeople(variable, value string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(value) == "" {
		return out, nil
	}
	for i, entry := range strings.Split(value, ",") {
		name, token, ok := strings.Cut(strings.TrimSpace(entry), ":")
		name, token = strings.TrimSpace(name), strings.TrimSpace(token)
		switch {
		case !ok || name == "" || token == "":
			return nil, fmt.Errorf("%s: entry %d is not name:token", variable, i+1)
		case strings.ContainsAny(name, " \t\n\r\"<>&:,"):
			return nil, fmt.Errorf("%s: entry %d: the name %q holds a space or markup character", variable, i+1, name)
		case len(token) < 16:
			return nil, fmt.Errorf("%s: entry %d (%s): the token is shorter than 16 characters", variable, i+1, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s: %s is named twice", variable, name)
		}
		out[name] = token
	}
	return out, nil
}

// checkPeople checks the admin API's people together: the name "admin" is the
// administrator's, each token belongs to one person only (a token shared by two
// would name either, with the rights of either), and operators or viewers need
// FIXIT_ADMIN_TOKEN, without which the admin API is off. Errors name people and
// variables, never a token.
func checkPeople(adminToken string, operators, viewers map[string]string) error {
	type owner struct{ variable, name string }
	byToken := map[string]owner{}
	if adminToken != "" {
		byToken[adminToken] = owner{"FIXIT_ADMIN_TOKEN", "admin"}
	}
	for _, g := range []struct {
		variable string
		people   map[string]string
	}{{"FIXIT_OPERATORS", operators}, {"FIXIT_VIEWERS", viewers}} {
		for _, name := range names(g.people) {
			if name == "admin" {
				return fmt.Errorf("%s: the name admin is the administrator's (FIXIT_ADMIN_TOKEN); choose another", g.variable)
			}
			tok := g.people[name]
			if o, dup := byToken[tok]; dup {
				return fmt.Errorf("%s: %s has the token of %s (%s): give each person a token of their own", g.variable, name, o.name, o.variable)
			}
			byToken[tok] = owner{g.variable, name}
		}
		if len(g.people) > 0 && adminToken == "" {
			return fmt.Errorf("%s is set but FIXIT_ADMIN_TOKEN is not: the admin API and the console are off without it", g.variable)
		}
	}
	return nil
}

// names lists the people of a token map, for the start-up log line.
func names(people map[string]string) []string { return slices.Sorted(maps.Keys(people)) }

func countErrors(ds engine.Diagnostics) int {
	n := 0
	for _, d := range ds {
		if d.Severity == engine.SevError {
			n++
		}
	}
	return n
}
