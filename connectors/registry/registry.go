// Package registry builds the registry of every connector fixit ships. `fixit
// serve` builds it with credentials; the tools that run without a server
// (`fixit validate`, `graph`, `schema`, `test`, `chat`) build it in dry-run, so
// flows are checked against the very action specs and channel limits the server
// uses.
package registry

import (
	"fmt"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/connectors/httpcall"
	"github.com/fixit-exchange/fixit/connectors/okdesk"
	"github.com/fixit-exchange/fixit/connectors/onec"
	"github.com/fixit-exchange/fixit/connectors/telegram"
	"github.com/fixit-exchange/fixit/connectors/waba"
)

// Config configures each connector; a connector whose credentials are unset is
// dry-run.
type Config struct {
	WABA     waba.Config
	Telegram telegram.Config
	Okdesk   okdesk.Config
	OneC     onec.Config
	HTTP     httpcall.Config
	// Files is the file store the WhatsApp, Telegram and Okdesk connectors
	// download into and upload from; nil: no files either way.
	Files connectors.Files
}

// New builds the registry: the senders (WhatsApp, then Telegram), then the
// executors (Okdesk, 1C, HTTP, WhatsApp, Telegram). The order is the order of
// the actions in the flow reference.
func New(cfg Config) (*connectors.Registry, error) {
	reg := connectors.NewRegistry()
	cfg.WABA.Files, cfg.Telegram.Files, cfg.Okdesk.Files = cfg.Files, cfg.Files, cfg.Files
	wa := waba.New(cfg.WABA)
	tg, err := telegram.New(cfg.Telegram)
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	ok, err := okdesk.New(cfg.Okdesk)
	if err != nil {
		return nil, fmt.Errorf("okdesk: %w", err)
	}
	oc, err := onec.New(cfg.OneC)
	if err != nil {
		return nil, fmt.Errorf("1c: %w", err)
	}
	hc := httpcall.New(cfg.HTTP)
	for _, s := range []connectors.Sender{wa, tg} {
		if err := reg.RegisterSender(s); err != nil {
			return nil, err
		}
	}
	for _, e := range []connectors.Executor{ok, oc, hc, wa, tg} {
		if err := reg.Register(e); err != nil {
			return nil, err
		}
	}
	for _, f := range []connectors.Fetcher{wa, tg, ok} {
		if err := reg.RegisterFetcher(f); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// DryRun returns the registry with no credentials and the http action in
// dry-run: every connector checks and records what it would send, and sends
// nothing.
func DryRun() *connectors.Registry {
	reg, err := New(Config{HTTP: httpcall.Config{DryRun: true}})
	if err != nil {
		panic(fmt.Sprintf("registry: the dry-run registry does not build: %v", err)) // a programmer error
	}
	return reg
}
