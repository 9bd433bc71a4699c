package processor

import (
	"context"
	"sync"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

// dialogCacheSize bounds the dialogs kept in memory (a few hundred bytes to a few
// kilobytes each): the dialogs at work, not all that are stored.
const dialogCacheSize = 8192

// dialogCache keeps the dialogs this process stepped last, with their active keys,
// so that a dialog's next step and its actions need not read them again: those two
// reads were a third of the reads per message.
//
// It is used with a single writer (SQLite) only. Every change to a dialog then
// goes through this process: its own steps, which put the dialog back after their
// commit (or drop it when the step failed), and the adoption of live dialogs by a
// new flow version, which moves their revision on. An entry made stale by that
// fails its step's UpdateDialog with ErrConflict; the entry is dropped and the step
// tried again from a fresh read. With several replicas (PostgreSQL) any of them may
// step a dialog, and every step reads it.
//
// It also maps the active keys of the dialogs it keeps to them, so that the router
// finds a known contact's dialog without a read. Keys are bound and released only
// by steps, so the map learns a key when a step that bound it commits and forgets
// the keys of a dialog that ends.
type dialogCache struct {
	mu   sync.Mutex
	m    map[int64]store.Dialog // with their active keys
	keys map[string]int64       // active key → its live dialog
	gen  uint64                 // moves on at each clear: a dialog read before it is not put back
}

func newDialogCache() *dialogCache {
	return &dialogCache{m: map[int64]store.Dialog{}, keys: map[string]int64{}}
}

// get returns a copy of the dialog with its keys. The Vars map and the Keys slice
// are shared: the interpreter copies them before it changes anything, and a step
// replaces them.
func (c *dialogCache) get(id int64) (*store.Dialog, bool) {
	row, _, ok := c.lookup(id)
	return row, ok
}

// lookup is get that also returns the cache's generation, read under the same
// lock: a dialog read from the store after a miss is put back with it.
func (c *dialogCache) lookup(id int64) (*store.Dialog, uint64, bool) {
	if c == nil {
		return nil, 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	row, ok := c.m[id]
	if !ok {
		return nil, c.gen, false
	}
	return &row, c.gen, true
}

// generation is the cache's current generation, to hand back to put.
func (c *dialogCache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// clear forgets every dialog and key: dialogs were changed behind the cache
// (AdoptDialogs). A step that read its dialog before does not put it back.
func (c *dialogCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.m = map[int64]store.Dialog{}
	c.keys = map[string]int64{}
}

// put keeps the dialog as just committed, with its active keys; an ended dialog
// (its keys are released) is dropped instead, and so is one read before the last
// clear (gen is the generation when it was read).
func (c *dialogCache) put(row *store.Dialog, gen uint64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		delete(c.m, row.ID)
		return
	}
	if row.Ended() {
		// Its keys are released. A key the cache no longer knows it held leads a
		// later event here at worst: the step finds the dialog ended and forgets it.
		for _, k := range c.m[row.ID].Keys {
			if c.keys[k] == row.ID {
				delete(c.keys, k)
			}
		}
		delete(c.m, row.ID)
		return
	}
	if _, ok := c.m[row.ID]; !ok && len(c.m) >= dialogCacheSize {
		for id := range c.m { // an arbitrary entry makes room
			delete(c.m, id)
			break
		}
	}
	c.m[row.ID] = *row
	for _, k := range row.Keys {
		if _, ok := c.keys[k]; !ok && len(c.keys) >= keyCacheSize {
			for old := range c.keys {
				delete(c.keys, old)
				break
			}
		}
		c.keys[k] = row.ID
	}
}

// keyCacheSize bounds the keys mapped to their dialogs (a few per dialog).
const keyCacheSize = 4 * dialogCacheSize

// route returns the live dialog bound to the first of keys, when that key is
// known here. The router's answer must be the stored one: the first key that is
// bound wins there, so a miss on the first key is no answer (a later key's dialog
// may not be the right one) and the store is asked.
func (c *dialogCache) route(keys []string) (*store.DialogRoute, bool) {
	if c == nil || len(keys) == 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	id, ok := c.keys[keys[0]]
	if !ok {
		return nil, false
	}
	r := &store.DialogRoute{ID: id}
	if d, ok := c.m[id]; ok {
		r.Channel, r.BusinessNumber = d.Channel, d.BusinessNumber
	}
	return r, true
}

// forgetKeys drops keys from the key map: they led to a dialog that has ended.
func (c *dialogCache) forgetKeys(keys []string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		delete(c.keys, k)
	}
}

// drop forgets a dialog: its step failed, so what is stored is not known here.
func (c *dialogCache) drop(id int64) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// windowCacheSize bounds the contacts whose open WhatsApp window is remembered.
const windowCacheSize = 65536

// windowCache remembers contacts' last inbound times read from the store, to
// answer "is the 24-hour window open?" without a read while it is. A contact's
// stored time only ever moves forward, so a remembered time still inside the
// window means the stored one is too, whatever replica stored it; a time outside
// it is read again.
type windowCache struct {
	mu sync.Mutex
	m  map[contactKey]time.Time
}

type contactKey struct{ channel, id string }

func newWindowCache() *windowCache { return &windowCache{m: map[contactKey]time.Time{}} }

// lastInbound returns the contact's last inbound time, from memory when the
// remembered one is no older than window, else from the store.
func (p *Processor) lastInbound(ctx context.Context, channel, contact string, now time.Time, window time.Duration) (time.Time, error) {
	k := contactKey{channel, contact}
	c := p.windows
	c.mu.Lock()
	at, ok := c.m[k]
	c.mu.Unlock()
	if ok && now.Sub(at) < window {
		return at, nil
	}
	at, err := p.st.LastInbound(ctx, channel, contact)
	if err != nil || at.IsZero() {
		return at, err
	}
	c.note(k, at)
	return at, nil
}

// note remembers a contact's last inbound time, unless a later one is remembered.
func (c *windowCache) note(k contactKey, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old, ok := c.m[k]
	if ok && !at.After(old) {
		return
	}
	if !ok && len(c.m) >= windowCacheSize {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = at
}

// noteInbound remembers the last inbound times that committed events recorded
// (store.InboundAt), so that the first reply to a new contact does not read it
// back: the stored time is the latest of them, never earlier than one noted.
func (p *Processor) noteInbound(events []event.Event) {
	now := p.cfg.Now()
	for i := range events {
		if channel, id, at, ok := store.InboundAt(&events[i], now); ok {
			p.windows.note(contactKey{channel, id}, at)
		}
	}
}
