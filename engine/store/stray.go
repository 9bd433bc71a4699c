package store

import (
	"maps"
	"sync"
	"time"
)

// strayReceipts remembers the messages that a receipt was about when it found no
// outbox item (StepTx.Receipt): the channel reported the message before its send
// was recorded. Only for those can a stored receipt wait for the send's record
// (StepTx.ReceiptsOf): a receipt not yet applied finds the item when its event is
// processed. It serves SQLite, where one process makes every write, so every
// receipt is applied where the send is recorded; on PostgreSQL another replica may
// apply it, and the receipts are always read.
//
// A message is remembered for strayFor, far longer than a send takes from its
// request to its record, which happen in the same process: a send whose answer
// is lost (the process ended) is made again, with a new message. A memory that
// fills up (strayCap messages, receipts of messages another system sent from the
// same number) forgets them all and answers "maybe" for every message until what
// it forgot would have expired. An entry left by a transaction that was rolled
// back costs one read.
type strayReceipts struct {
	mu   sync.Mutex
	now  func() time.Time // time.Now: wall time, whatever clock the store has
	seen map[string]time.Time
	// blind is when the memory, which overflowed, knows again: until then any
	// message may have a receipt waiting.
	blind time.Time
}

const (
	strayFor = 15 * time.Minute
	strayCap = 10000
)

func newStrayReceipts() *strayReceipts {
	return &strayReceipts{now: time.Now, seen: map[string]time.Time{}}
}

// add remembers that a receipt about msg found no item.
func (m *strayReceipts) add(msg string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if len(m.seen) >= strayCap {
		maps.DeleteFunc(m.seen, func(_ string, at time.Time) bool { return now.Sub(at) >= strayFor })
		if len(m.seen) >= strayCap {
			clear(m.seen)
			m.blind = now.Add(strayFor)
		}
	}
	m.seen[msg] = now
}

// mayWait reports whether a receipt about msg may be stored and not applied to its
// item: one found no item within strayFor, or the memory does not know.
func (m *strayReceipts) mayWait(msg string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.Before(m.blind) {
		return true
	}
	at, ok := m.seen[msg]
	if ok && now.Sub(at) >= strayFor {
		delete(m.seen, msg)
		return false
	}
	return ok
}
