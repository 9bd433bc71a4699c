package processor

import (
	"sync"
	"sync/atomic"

	"github.com/fixit-exchange/fixit/engine/store"
)

// Intake pressure and backlog bounds.
const (
	// pressure is the number of webhooks waiting for their inbox commit from which
	// processing yields: while so many wait, one lane works at a time. Acknowledging
	// deliveries fast matters more than working through the backlog a moment sooner
	// (Meta retries a slow webhook, and disables one that stays slow); processing
	// goes on, slower, and catches up when the burst ends.
	pressure = 48
	// maxInflight bounds the events the router holds in lanes; beyond it the router
	// stops reading the inbox until half of them are done, so a backlog stays in the
	// database, not in memory.
	maxInflight = 8192
)

// lanes are the per-dialog queues: a dialog's events are processed one at a time
// in the order they were handed out, different dialogs in parallel (up to a bound).
// A lane with a negative id is a start lane, of events no dialog claimed when they
// were routed.
type lanes struct {
	process  func(lane int64, ev store.Event) // processes one event
	wakeUp   func()                           // the router stopped at maxInflight; there is room again
	pressure func() int64                     // webhooks waiting for their commit

	mu       sync.Mutex
	m        map[int64]*lane
	seqs     map[int64]bool // events handed to a lane and not yet done
	finished map[int64]bool // events done since the router's last read of the inbox
	inflight sync.WaitGroup // events handed to lanes and not yet done
	starts   sync.WaitGroup // events handed to start lanes and not yet done
	startsN  atomic.Int64   // the same, counted
	n        atomic.Int64   // events handed to lanes and not yet done (the WaitGroup's count)
	sem      chan struct{}  // lanes at work
	gate     chan struct{}  // the one lane that may work while the intake is under pressure
}

// lane is the queue of one dialog's events.
type lane struct {
	id       int64
	queue    []store.Event
	occupied bool // taken by occupy: its events wait for release
}

func newLanes(n int, process func(int64, store.Event), wakeUp func()) *lanes {
	return &lanes{process: process, wakeUp: wakeUp, pressure: func() int64 { return 0 },
		m: map[int64]*lane{}, seqs: map[int64]bool{}, finished: map[int64]bool{}, sem: make(chan struct{}, n), gate: make(chan struct{}, 1)}
}

// full reports whether the router should stop handing out events for now.
func (l *lanes) full() bool { return l.n.Load() >= maxInflight }

// wait waits until every event handed out is processed.
func (l *lanes) wait() { l.inflight.Wait() }

// waitStarts waits until every event handed to a start lane is processed.
func (l *lanes) waitStarts() { l.starts.Wait() }

// queued reports whether an event is already handed to a lane, or was done after
// the router's last read of the inbox began (forgetFinished): that read may still
// show it pending, and a rescan must not hand it out twice.
func (l *lanes) queued(seq int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seqs[seq] || l.finished[seq]
}

// forgetFinished is called by the router before each read of the inbox: what was
// done before it, the read sees as it was left.
func (l *lanes) forgetFinished() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.finished)
}

// occupy takes dialog id's lane for work done outside the lanes (an action's
// result applied where it is recorded) when no event of the dialog is queued or
// being processed; events handed to the lane meanwhile wait until release. It
// reports whether it took the lane.
func (l *lanes) occupy(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.m[id]; busy {
		return false
	}
	l.m[id] = &lane{id: id, occupied: true}
	return true
}

// release gives back a lane taken by occupy, starting it when events wait in it.
func (l *lanes) release(id int64) {
	l.mu.Lock()
	ln := l.m[id]
	ln.occupied = false
	if len(ln.queue) == 0 {
		delete(l.m, id)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	go l.run(ln)
}

// waiting reports whether events wait in lane id.
func (l *lanes) waiting(id int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.m[id]
	return ln != nil && len(ln.queue) > 0
}

// quiet reports whether no start lane has events: an event no dialog claimed when
// it was routed may yet belong to any dialog.
func (l *lanes) quiet() bool { return l.startsN.Load() == 0 }

// submit queues ev in lane id and starts the lane's goroutine when it is not running.
func (l *lanes) submit(id int64, ev store.Event) {
	l.inflight.Add(1)
	l.n.Add(1)
	if id < 0 {
		l.starts.Add(1)
		l.startsN.Add(1)
	}
	l.mu.Lock()
	ln, running := l.m[id]
	if !running {
		ln = &lane{id: id}
		l.m[id] = ln
	}
	ln.queue = append(ln.queue, ev)
	l.seqs[ev.Seq] = true
	l.mu.Unlock()
	if !running {
		go l.run(ln) // an occupied lane is started by release
	}
}

func (l *lanes) run(ln *lane) {
	l.sem <- struct{}{}
	defer func() { <-l.sem }()
	for {
		l.mu.Lock()
		if len(ln.queue) == 0 {
			delete(l.m, ln.id)
			l.mu.Unlock()
			return
		}
		ev := ln.queue[0]
		l.mu.Unlock()

		release := l.yield()
		l.process(ln.id, ev)
		release()

		l.mu.Lock()
		ln.queue = ln.queue[1:]
		delete(l.seqs, ev.Seq)
		l.finished[ev.Seq] = true
		l.mu.Unlock()
		if ln.id < 0 {
			l.startsN.Add(-1)
			l.starts.Done()
		}
		if l.n.Add(-1) == maxInflight/2 {
			l.wakeUp()
		}
		l.inflight.Done()
	}
}

// yield waits for the gate while the intake is under pressure and returns its
// release; otherwise it returns at once.
func (l *lanes) yield() (release func()) {
	if l.pressure() < pressure {
		return func() {}
	}
	l.gate <- struct{}{}
	return func() { <-l.gate }
}
