package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine/dialog"
)

var now = time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)

// dlg is a dialog on channel whose customer wrote a minute ago.
func dlg(channel string) dialog.Dialog {
	d := dialog.Dialog{ID: 7, Flow: "f", Channel: channel, ContactID: "79161234567", Phone: "79161234567"}
	if channel == "telegram" {
		d.ContactID = "512345678"
	}
	return d
}

func examples(spec connectors.ActionSpec) map[string]any {
	out := map[string]any{}
	for _, p := range spec.Params {
		if p.Example != nil {
			out[p.Name] = p.Example
		}
	}
	return out
}

// TestExecutorsMatchTheirSpecs ties each executor to the specs it declares, in
// dry-run: the executor accepts every parameter at its example value, each
// example that names itself (…example…) reaches the request it would send, and
// each parameter the spec calls required is one the executor cannot do without.
func TestExecutorsMatchTheirSpecs(t *testing.T) {
	reg := DryRun()
	specs := reg.Actions()
	if len(specs) < 12 {
		t.Fatalf("only %d actions described", len(specs))
	}
	for _, spec := range specs {
		if spec.Name == "send" {
			continue
		}
		t.Run(spec.Name, func(t *testing.T) {
			for _, p := range spec.Params {
				if p.Example == nil {
					t.Errorf("parameter %s has no example", p.Name)
				}
			}
			res, err := reg.Execute(context.Background(), connectors.Request{ID: "1", Kind: spec.Name, Params: examples(spec), Dialog: dlg("waba"), LastInboundAt: now.Add(-time.Minute), Now: now, Attempt: 1})
			if err != nil {
				t.Fatalf("with every example: %v", err)
			}
			if !res.DryRun {
				t.Errorf("the dry-run registry sent for real")
			}
			sent, _ := json.Marshal(res.Data)
			unescaped, _ := url.QueryUnescape(string(sent))
			for _, p := range spec.Params {
				if s, ok := p.Example.(string); ok && strings.Contains(s, "example") && !strings.Contains(string(sent), s) && !strings.Contains(unescaped, s) {
					t.Errorf("parameter %s = %q does not reach the request: %s", p.Name, s, sent)
				}
			}
			for _, p := range spec.Params {
				if !p.Required {
					continue
				}
				params := examples(spec)
				delete(params, p.Name)
				_, err := reg.Execute(context.Background(), connectors.Request{ID: "1", Kind: spec.Name, Params: params, Dialog: dlg("waba"), LastInboundAt: now.Add(-time.Minute), Now: now, Attempt: 1})
				var ce *connectors.Error
				if !errors.As(err, &ce) || ce.Code != connectors.CodeBadParams {
					t.Errorf("without required %s: %v, want a %s error", p.Name, err, connectors.CodeBadParams)
				}
			}
		})
	}
}

// TestSendOnEveryChannel runs "send" with SendSpec's examples on each described
// channel.
func TestSendOnEveryChannel(t *testing.T) {
	reg := DryRun()
	chans := reg.Channels()
	if len(chans) != 2 {
		t.Fatalf("channels %v, want WhatsApp and Telegram", chans)
	}
	for _, ch := range chans {
		res, err := reg.Execute(context.Background(), connectors.Request{ID: "1", Kind: "send", Params: examples(connectors.SendSpec), Dialog: dlg(ch.Name), LastInboundAt: now.Add(-time.Minute), Now: now, Attempt: 1})
		if err != nil {
			t.Errorf("%s: %v", ch.Name, err)
			continue
		}
		sent, _ := json.Marshal(res.Data)
		for _, want := range []string{"Здравствуйте!", "Да"} {
			if !strings.Contains(string(sent), want) {
				t.Errorf("%s: %q missing from %s", ch.Name, want, sent)
			}
		}
		if ch.Limits.Text == 0 {
			t.Errorf("%s declares no text limit", ch.Name)
		}
	}
}

// TestKindsAreDescribed: every kind the registry executes has a spec.
func TestKindsAreDescribed(t *testing.T) {
	reg := DryRun()
	described := map[string]bool{}
	for _, s := range reg.Actions() {
		if described[s.Name] {
			t.Errorf("%s is described twice", s.Name)
		}
		described[s.Name] = true
	}
	for _, k := range reg.Kinds() {
		if !described[k] {
			t.Errorf("%s is executed but not described", k)
		}
	}
	if !described["send"] {
		t.Errorf("send is not described")
	}
}
