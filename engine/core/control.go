package core

import (
	"context"
	"time"

	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

// LastInbound returns when a contact last wrote (the zero time when never).
type LastInbound func(ctx context.Context, channel, contact string) (time.Time, error)

// CheckControl says whether an operator's control can be applied to dialog d now,
// before it is stored: it is possible for the dialog's flow version and fits its
// status, and a free-form message goes to a customer on a channel, on WhatsApp
// inside the 24-hour customer service window (a template is sent any time).
// lastInbound is asked only for such a message. A refusal is an
// *engine.ErrControl; other errors are the reads'. The server's controls and the
// test world's check with it alike.
func (c *Core) CheckControl(ctx context.Context, d *dialog.Dialog, ctl event.Control, lastInbound LastInbound) error {
	f, err := c.Version(ctx, d.Flow, d.FlowHash)
	if err != nil {
		return err
	}
	if err := engine.CheckControl(f, ctl); err != nil {
		return err
	}
	if err := engine.ControlFits(ctl.Kind, d.Status); err != nil {
		return err
	}
	if ctl.Kind != event.ControlMessage {
		return nil
	}
	if d.Channel == "" || d.ContactID == "" {
		return &engine.ErrControl{Msg: "the dialog has no customer channel to write on", Invalid: true}
	}
	if d.Channel != event.SourceWABA || ctl.Template != nil {
		return nil
	}
	now := c.cfg.Now()
	last, err := lastInbound(ctx, d.Channel, d.ContactID)
	if err != nil {
		return err
	}
	if last.IsZero() || now.Sub(last) >= waba.Window {
		why := "no message from the customer is known"
		if !last.IsZero() {
			why = "the customer last wrote at " + last.UTC().Format(time.RFC3339)
		}
		return &engine.ErrControl{Invalid: true, Msg: "outside WhatsApp's 24-hour customer service window (" + why +
			"): only a template may be sent; give template {name, language, params}"}
	}
	return nil
}
