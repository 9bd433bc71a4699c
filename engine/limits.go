package engine

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/fixit-exchange/fixit/connectors"
)

// The channels' limits, checked where a message's values are written out: what
// each channel accepts comes from the catalog (each sender declares it), and a
// flow is checked against the channels its dialogs can talk on.

// sendChannels are the channels a flow's messages can go out on: those of the
// events that start it (WhatsApp for waba.*, Telegram for telegram.*), or every
// channel when it starts on another system's event.
func (l *fileLoader) sendChannels() []connectors.Channel {
	all := l.catalog.Channels()
	if l.flow == nil || len(l.flow.StartOn) == 0 {
		return all
	}
	var out []connectors.Channel
	for _, ch := range all {
		for _, t := range l.flow.StartOn {
			if strings.HasPrefix(t, ch.Name+".") {
				out = append(out, ch)
				break
			}
		}
	}
	for _, t := range l.flow.StartOn {
		source, _, _ := strings.Cut(t, ".")
		if source != "waba" && source != "telegram" {
			return all
		}
	}
	return out
}

// limitOf is one channel's limit on one value.
type limitOf struct {
	title string // "WhatsApp"
	limit int
}

// limitCode is the diagnostic code of a limit of the channels named.
func limitCode(lims []limitOf) string {
	for _, l := range lims {
		if l.title != "Telegram" {
			return CodeWhatsAppLimit
		}
	}
	return CodeTelegramLimit
}

// connectorTitle names the system an action talks to, for a limit's message.
func connectorTitle(action string) string {
	switch {
	case strings.HasPrefix(action, "telegram."):
		return "Telegram"
	case strings.HasPrefix(action, "waba."):
		return "WhatsApp"
	}
	return action
}

// strictest keeps, of the channels' limits on one value, the smallest, and
// names every channel that has it.
func strictest(lims []limitOf) (limitOf, bool) {
	best := limitOf{}
	var titles []string
	for _, l := range lims {
		switch {
		case l.limit <= 0:
		case best.limit == 0 || l.limit < best.limit:
			best, titles = l, []string{l.title}
		case l.limit == best.limit:
			titles = append(titles, l.title)
		}
	}
	best.title = strings.Join(titles, " and ")
	return best, best.limit > 0
}

// checkLength checks a scalar against the channels' limits on it: a literal
// over the limit is an error; a template whose literal part alone is over it is
// a warning (the value is cut at send time).
func (l *fileLoader) checkLength(n *yaml.Node, lims []limitOf, what string, bytes bool) {
	l.checkLengthHint(n, lims, what, bytes, "")
}

// checkLengthHint is checkLength with a hint of its own for a value over the limit.
func (l *fileLoader) checkLengthHint(n *yaml.Node, lims []limitOf, what string, bytes bool, hint string) {
	lim, ok := strictest(lims)
	if !ok || n == nil || n.Kind != yaml.ScalarNode {
		return
	}
	unit := "characters"
	count := utf8.RuneCountInString
	if bytes {
		unit, count = "bytes", func(s string) int { return len(s) }
	}
	if !HasTemplate(n.Value) {
		if c := count(n.Value); c > lim.limit {
			if utf8.RuneCountInString(n.Value) <= 40 {
				what += fmt.Sprintf(" %q", n.Value)
			}
			l.doc.Error(n, limitCode(lims), fmt.Sprintf("%s is %d %s; %s allows %d", what, c, unit, lim.title, lim.limit), hint)
		}
		return
	}
	segs, bad := splitTemplate(n.Value)
	if bad >= 0 {
		return // reported as bad-template
	}
	var lit strings.Builder
	for _, s := range segs {
		lit.WriteString(s.lit)
	}
	if c := count(lit.String()); c > lim.limit {
		l.doc.Warn(n, CodeTemplateOverLimit, fmt.Sprintf("%s is already %d %s without its ${…} parts; %s allows %d, so it will be cut when sent", what, c, unit, lim.title, lim.limit), "")
	}
}

// checkSend checks a send action's values against the limits of each channel
// the flow can talk on, and its buttons' and rows' ids for repeats.
func (l *fileLoader) checkSend(nodes map[string]*yaml.Node) {
	chans := l.sendChannels()
	each := func(get func(connectors.Limits) int) []limitOf {
		out := make([]limitOf, 0, len(chans))
		for _, ch := range chans {
			out = append(out, limitOf{title: ch.Title, limit: get(ch.Limits)})
		}
		return out
	}
	interactive := nodes["buttons"] != nil || nodes["list"] != nil
	if interactive {
		l.checkLength(nodes["text"], each(func(x connectors.Limits) int { return x.Body }), "text with buttons or a list", false)
		l.checkLength(nodes["header"], each(func(x connectors.Limits) int { return x.Header }), "header", false)
		l.checkLength(nodes["footer"], each(func(x connectors.Limits) int { return x.Footer }), "footer", false)
	} else {
		l.checkLength(nodes["text"], each(func(x connectors.Limits) int { return x.Text }), "text", false)
	}
	if b := nodes["buttons"]; b != nil && b.Kind == yaml.SequenceNode {
		l.checkCount(b, each(func(x connectors.Limits) int { return x.Buttons }), "buttons", "use a list message for more choices")
		ids := map[string]*yaml.Node{}
		for _, c := range b.Content {
			id, title := choiceNodes(Resolve(c))
			l.checkLength(title, each(func(x connectors.Limits) int { return x.ButtonTitle }), "button title", false)
			l.checkLength(id, each(func(x connectors.Limits) int { return x.ButtonID }), "button id", false)
			l.checkLengthHint(id, each(func(x connectors.Limits) int { return x.ButtonIDBytes }), "button id", true, "give the button a short id: {id: yes, title: …}")
			l.checkRepeat(ids, id, "button")
		}
	}
	if list := Resolve(nodes["list"]); list != nil && list.Kind == yaml.MappingNode {
		var rows *yaml.Node
		for _, p := range l.doc.Pairs(list) {
			switch p.Key.Value {
			case "button":
				l.checkLength(p.Val, each(func(x connectors.Limits) int { return x.ListButton }), "list button", false)
			case "section":
				l.checkLength(p.Val, each(func(x connectors.Limits) int { return x.SectionTitle }), "section title", false)
			case "rows":
				rows = p.Val
			}
		}
		if rows != nil && rows.Kind == yaml.SequenceNode {
			l.checkCount(rows, each(func(x connectors.Limits) int { return x.ListRows }), "rows", "")
			ids := map[string]*yaml.Node{}
			for _, c := range rows.Content {
				c = Resolve(c)
				id, title := choiceNodes(c)
				l.checkLength(title, each(func(x connectors.Limits) int { return x.RowTitle }), "row title", false)
				l.checkLength(id, each(func(x connectors.Limits) int { return x.RowID }), "row id", false)
				l.checkLengthHint(id, each(func(x connectors.Limits) int { return x.RowIDBytes }), "row id", true, "give the row a short id: {id: am, title: …}")
				if c.Kind == yaml.MappingNode {
					for _, p := range l.doc.Pairs(c) {
						if p.Key.Value == "description" {
							l.checkLength(p.Val, each(func(x connectors.Limits) int { return x.RowDescription }), "row description", false)
						}
					}
				}
				l.checkRepeat(ids, id, "row")
			}
		}
	}
}

// choiceNodes returns a button's or a row's id and title: a bare string is both.
func choiceNodes(c *yaml.Node) (id, title *yaml.Node) {
	switch c.Kind {
	case yaml.ScalarNode:
		return c, c
	case yaml.MappingNode:
		for i := 0; i+1 < len(c.Content); i += 2 {
			switch c.Content[i].Value {
			case "id":
				id = Resolve(c.Content[i+1])
			case "title":
				title = Resolve(c.Content[i+1])
			}
		}
		if id == nil {
			id = title
		}
	}
	return id, title
}

// checkCount checks how many items a list has against the channels' limits.
func (l *fileLoader) checkCount(list *yaml.Node, lims []limitOf, what, hint string) {
	lim, ok := strictest(lims)
	if !ok || len(list.Content) <= lim.limit {
		return
	}
	l.doc.Error(list.Content[lim.limit], limitCode(lims), fmt.Sprintf("%d %s; %s allows %d", len(list.Content), what, lim.title, lim.limit), hint)
}

// checkRepeat reports a literal id already used in the same message: a reply
// could not tell the two apart.
func (l *fileLoader) checkRepeat(seen map[string]*yaml.Node, id *yaml.Node, what string) {
	if id == nil || id.Kind != yaml.ScalarNode || HasTemplate(id.Value) {
		return
	}
	if first, dup := seen[id.Value]; dup {
		l.doc.Error(id, CodeDuplicateID, fmt.Sprintf("%s id %q is used twice in this message (first at line %d); a reply could not tell them apart", what, id.Value, first.Line), "")
		return
	}
	seen[id.Value] = id
}
