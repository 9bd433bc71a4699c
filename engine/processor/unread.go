package processor

import (
	"slices"
	"strconv"
	"sync"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// unread indexes, on a single-writer store, the events stored and not yet handed
// out by the router, by their keys: it answers whether an event of a dialog could
// still come before one being applied out of turn (an action's result applied
// where it is recorded, see outbox.inline). Every event goes into the store
// through the writer (webhooks, timers, action results, operators' controls),
// which adds it inside the transaction that stores it; the router removes it once
// the event is in a lane (or settled), and inline removes the result it applied.
// An event whose transaction was rolled back is left behind and only makes the
// answer more cautious, until sweep drops what the router has read past.
type unread struct {
	mu    sync.Mutex
	keys  map[int64][]string // seq → the keys it is indexed under
	byKey map[string][]int64 // key → the seqs of the unread events carrying it
}

func newUnread() *unread {
	return &unread{keys: map[int64][]string{}, byKey: map[string][]int64{}}
}

// unreadAddress is the key an event addressed to a dialog (a timer, an action
// result, an operator's control) is indexed under.
func unreadAddress(dialogID int64) string { return "\x00dialog:" + strconv.FormatInt(dialogID, 10) }

// add indexes a stored event under its keys and, when it is addressed to a
// dialog, under that dialog's address.
func (u *unread) add(seq int64, ev *event.Event) {
	keys := ev.Keys
	if id, ok := event.Target(ev); ok {
		keys = append(slices.Clip(keys), unreadAddress(id))
	}
	if len(keys) == 0 {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	// The seq of a rolled-back event is given to the next one: keep both's keys,
	// so that remove finds every list it is in.
	for _, k := range keys {
		if !slices.Contains(u.keys[seq], k) {
			u.keys[seq] = append(u.keys[seq], k)
			u.byKey[k] = append(u.byKey[k], seq)
		}
	}
}

// remove forgets an event: it is in a lane, or settled.
func (u *unread) remove(seq int64) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.removeLocked(seq)
}

func (u *unread) removeLocked(seq int64) {
	keys, ok := u.keys[seq]
	if !ok {
		return
	}
	delete(u.keys, seq)
	for _, k := range keys {
		seqs := slices.DeleteFunc(u.byKey[k], func(s int64) bool { return s == seq })
		if len(seqs) == 0 {
			delete(u.byKey, k)
		} else {
			u.byKey[k] = seqs
		}
	}
}

// sweepFrom is how many events the index holds before the router sweeps it.
const sweepFrom = 4096

// sweep forgets every event up to seen, the highest seq the router has read: what
// is left of those is an event whose transaction was rolled back, or one settled
// before the router came to it.
func (u *unread) sweep(seen int64) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.keys) < sweepFrom {
		return
	}
	for seq := range u.keys {
		if seq <= seen {
			u.removeLocked(seq)
		}
	}
}

// before reports whether an unread event stored before seq carries one of keys.
func (u *unread) before(seq int64, keys ...[]string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, ks := range keys {
		for _, k := range ks {
			for _, s := range u.byKey[k] {
				if s < seq {
					return true
				}
			}
		}
	}
	return false
}

// size is how many events the index holds.
func (u *unread) size() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.keys)
}

// indexingTx is a step's transaction that indexes the events it stores (unread,
// fileKeys) and notes the keys it binds in the ordinary scope (for the bind log,
// once committed).
type indexingTx struct {
	store.StepTx
	w     *writer
	bound *[]string
}

func (t indexingTx) BindKey(dialogID int64, key string) error { return t.BindKeyIn("", dialogID, key) }

func (t indexingTx) BindKeyIn(scope string, dialogID int64, key string) error {
	if err := t.StepTx.BindKeyIn(scope, dialogID, key); err != nil {
		return err
	}
	if scope == "" {
		*t.bound = append(*t.bound, key)
	}
	return nil
}

func (t indexingTx) AppendEvents(events []event.Event) ([]store.AppendResult, error) {
	res, err := t.StepTx.AppendEvents(events)
	if err != nil {
		return res, err
	}
	for i := range res {
		if res[i].Duplicate {
			continue
		}
		t.w.unread.add(res[i].Seq, &events[i])
		if event.HasFetch(&events[i]) {
			t.w.files.add(events[i].Keys)
		}
	}
	return res, nil
}

// bindLog is, on a single-writer store, the keys bound in the ordinary scope by
// committed steps, in commit order. It lets a look-up that found no dialog for an
// event's keys be trusted later: the answer holds as long as none of the keys was
// bound since (see since). The router looks an event up and hands it to a start
// lane; the lane would otherwise ask the store again.
//
// A key is published after the commit that bound it, so a look-up that began
// before the publication (now taken before it) either saw the key in the store or
// finds it here.
type bindLog struct {
	mu    sync.Mutex
	seq   uint64            // commits published
	at    map[string]uint64 // key → the commit that last bound it
	floor uint64            // what was bound up to it is forgotten
}

// bindLogSize bounds the keys remembered; past it the log forgets them all, and a
// look-up older than that is not trusted.
const bindLogSize = 1 << 16

func newBindLog() *bindLog { return &bindLog{at: map[string]uint64{}} }

// now is the mark to take before a look-up.
func (b *bindLog) now() uint64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// publish records the keys a committed step bound.
func (b *bindLog) publish(keys []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	if len(b.at)+len(keys) > bindLogSize {
		b.at, b.floor = map[string]uint64{}, b.seq-1
	}
	for _, k := range keys {
		b.at[k] = b.seq
	}
}

// since reports whether one of keys may have been bound after mark (true when
// the log does not know: no log, or the mark is older than what it remembers).
func (b *bindLog) since(mark uint64, keys []string) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if mark < b.floor {
		return true
	}
	for _, k := range keys {
		if b.at[k] > mark {
			return true
		}
	}
	return false
}

// fileKeys is, for an exclusive processor, the keys of the events stored with
// files to fetch: those pending when it first looks, and every one stored (or
// re-driven) since. Only an event carrying one of them can have to wait for an
// earlier event's files, so the others skip that read (cachedReader.AwaitingFiles);
// most contacts never send one. Past fileKeysSize keys every event reads.
type fileKeys struct {
	mu     sync.Mutex
	loaded bool
	keys   map[string]struct{}
}

const fileKeysSize = 1 << 17

func newFileKeys() *fileKeys { return &fileKeys{keys: map[string]struct{}{}} }

// add remembers the keys of an event stored with files to fetch.
func (f *fileKeys) add(keys []string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(keys)
}

func (f *fileKeys) addLocked(keys []string) {
	if f.keys == nil {
		return // too many: every event reads
	}
	for _, k := range keys {
		f.keys[k] = struct{}{}
	}
	if len(f.keys) > fileKeysSize {
		f.keys = nil
	}
}

// may reports whether an event with keys may have to wait for files, loading the
// keys of the pending events with files the first time (load's error is returned,
// and the next call tries again).
func (f *fileKeys) may(keys []string, load func() ([]string, error)) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.loaded {
		pending, err := load()
		if err != nil {
			return true, err
		}
		f.addLocked(pending)
		f.loaded = true
	}
	if f.keys == nil {
		return true, nil
	}
	for _, k := range keys {
		if _, ok := f.keys[k]; ok {
			return true, nil
		}
	}
	return false, nil
}
