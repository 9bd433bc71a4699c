package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/fixit-exchange/fixit/internal/startsignals"
)

// signals handles SIGTERM, SIGINT and SIGHUP, caught from the start of the program
// (package startsignals), so that none of them ends `fixit serve` the way Go does
// by default:
//   - the first SIGTERM or SIGINT cancels Stopping(): during start-up serve stops
//     and exits 0, once serving it drains; later ones are logged and ignored.
//   - SIGHUP reloads the flows once the server is ready (see reloadOnHUP); one
//     received before is remembered and applied then, once however many came.
type signals struct {
	ch     chan os.Signal
	ctx    context.Context
	cancel context.CancelFunc
	// hup holds a SIGHUP not yet acted on: capacity 1, so SIGHUPs that come before
	// the reloader takes one count once.
	hup chan struct{}

	mu    sync.Mutex
	ready bool
}

// catchSignals takes over the signals caught since the program started. Nothing
// is logged, and no signal acted on, until listen.
func catchSignals() *signals {
	s := &signals{ch: startsignals.Take(), hup: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Stopping is cancelled by the first SIGTERM or SIGINT.
func (s *signals) Stopping() context.Context { return s.ctx }

// listen acts on the signals caught so far and from now on, logging to log.
func (s *signals) listen(log *slog.Logger) {
	go func() {
		for sig := range s.ch {
			switch sig {
			case syscall.SIGHUP:
				select {
				case s.hup <- struct{}{}:
				default: // one is waiting already
				}
				s.mu.Lock()
				ready := s.ready
				s.mu.Unlock()
				switch {
				case s.ctx.Err() != nil:
					log.Info("SIGHUP while stopping: ignored")
				case !ready:
					log.Info("SIGHUP before the server is ready: the flows are reloaded once it is")
				}
			default:
				if s.ctx.Err() != nil {
					log.Info("signal while stopping: already draining", "signal", sig.String())
					continue
				}
				log.Info("stopping", "signal", sig.String())
				s.cancel()
			}
		}
	}()
}

// reloadOnHUP marks the server ready: from now on each SIGHUP calls reload, one
// at a time, until Stopping ends; a SIGHUP received during start-up is applied
// now.
func (s *signals) reloadOnHUP(log *slog.Logger, reload func()) {
	s.mu.Lock()
	s.ready = true
	s.mu.Unlock()
	if len(s.hup) > 0 {
		log.Info("reloading the flows for the SIGHUP received during start-up")
	}
	go func() {
		for {
			select {
			case <-s.hup:
				reload()
			case <-s.ctx.Done():
				return
			}
		}
	}()
}

// stop stops catching (the default behaviour of the signals returns) and ends
// the listener.
func (s *signals) stop() {
	signal.Stop(s.ch)
	close(s.ch)
	s.cancel()
}
