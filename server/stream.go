package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Change is one thing that changed, as the live feed tells it.
type Change struct {
	ID       int64          `json:"id"`
	Type     string         `json:"type"` // "dialog" (a step), "action" (an action's outcome), "reload"
	At       time.Time      `json:"at"`
	DialogID int64          `json:"dialog_id,omitempty"`
	Flow     string         `json:"flow,omitempty"`
	Data     map[string]any `json:"data,omitempty"`
}

// Change types.
const (
	ChangeDialog = "dialog"
	ChangeAction = "action"
	ChangeReload = "reload"
)

// streamBacklog is how many changes the feed keeps for clients that reconnect with
// Last-Event-ID.
const streamBacklog = 2048

// Stream fans what changes out to the clients of GET /api/v1/stream (Server-Sent
// Events), keeping the latest changes for clients that reconnect. It is safe for
// concurrent use; Publish never blocks: a client that does not keep up is dropped
// and reconnects where it left off.
//
// A change's id counts on from the microsecond the feed was made, so the ids of a
// restarted server are above those of the run before it: a client that reconnects
// with an id of an earlier run is told to reset, never given a wrong gap.
type Stream struct {
	mu      sync.Mutex
	next    int64
	backlog []Change
	subs    map[chan Change]struct{}
	closed  bool
}

// NewStream returns an empty feed.
func NewStream() *Stream {
	return &Stream{subs: map[chan Change]struct{}{}, next: time.Now().UnixMicro()}
}

// Close ends every client's feed and refuses new clients, so that a server that
// shuts down does not wait for them.
func (s *Stream) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ch := range s.subs {
		delete(s.subs, ch)
		close(ch)
	}
}

// Publish numbers c and sends it to every client.
func (s *Stream) Publish(c Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	c.ID = s.next
	if c.At.IsZero() {
		c.At = time.Now().UTC()
	}
	s.backlog = append(s.backlog, c)
	if len(s.backlog) > streamBacklog {
		s.backlog = s.backlog[len(s.backlog)-streamBacklog:]
	}
	for ch := range s.subs {
		select {
		case ch <- c:
		default:
			delete(s.subs, ch) // too slow: it reconnects with Last-Event-ID
			close(ch)
		}
	}
}

// subscribe returns the changes after id that the backlog still has, whether it
// has all of them, and a channel of the changes to come.
func (s *Stream) subscribe(after int64) ([]Change, bool, chan Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan Change, 256)
	if s.closed {
		close(ch)
		return nil, true, ch
	}
	s.subs[ch] = struct{}{}
	var missed []Change
	var complete bool
	switch {
	case after > s.next: // an id of an earlier run of the server
	case after == s.next:
		complete = true
	default:
		complete = len(s.backlog) > 0 && s.backlog[0].ID <= after+1
	}
	for _, c := range s.backlog {
		if c.ID > after {
			missed = append(missed, c)
		}
	}
	return missed, complete, ch
}

func (s *Stream) unsubscribe(ch chan Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[ch]; ok {
		delete(s.subs, ch)
		close(ch)
	}
}

// stream serves the live feed as Server-Sent Events: one event per change
// ("dialog", "action", "reload"), its id the change's, its data the change as JSON.
// ?dialog=ID and ?flow=NAME keep the changes of one dialog or flow (a reload
// always passes). A client that reconnects with Last-Event-ID gets what it missed;
// when that is no longer kept, a "reset" event tells it to reload what it shows.
func (s *Server) stream(c *gin.Context) {
	var dialogID int64
	if v := c.Query("dialog"); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			s.failInput(c, http.StatusBadRequest, fmt.Sprintf("dialog=%q: want a dialog id", v))
			return
		}
		dialogID = id
	}
	flow := c.Query("flow")
	// Last-Event-ID is the browser's echo of an id this feed sent; one it cannot
	// read is answered with a reset, as an id too old is (an error would stop the
	// browser from reconnecting at all).
	after, fresh := int64(0), true
	if v := c.GetHeader("Last-Event-ID"); v != "" {
		after, _ = strconv.ParseInt(v, 10, 64)
		fresh = false
	}
	missed, complete, ch := s.cfg.Stream.subscribe(max(after, 0))
	defer s.cfg.Stream.unsubscribe(ch)
	if fresh {
		missed, complete = nil, true // a new client starts from now
	}
	// The server's read and write timeouts are for requests, not for a feed that
	// lasts: reads are not expected, and each write gets its own deadline, so a
	// client that stops reading is dropped.
	rc := http.NewResponseController(c.Writer)
	_ = rc.SetReadDeadline(time.Time{})
	writeBy := func() { _ = rc.SetWriteDeadline(time.Now().Add(2 * s.heartbeat)) }
	writeBy()
	w := c.Writer
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the feed
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	if !complete {
		fmt.Fprint(w, "event: reset\ndata: {}\n\n")
	}
	pass := func(ch Change) bool {
		return ch.Type == ChangeReload || ((dialogID == 0 || ch.DialogID == dialogID) && (flow == "" || ch.Flow == flow))
	}
	send := func(ch Change) {
		b, _ := json.Marshal(ch) // plain values: cannot fail
		fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ch.ID, ch.Type, b)
	}
	for _, m := range missed {
		if pass(m) {
			send(m)
		}
	}
	w.Flush()
	beat := time.NewTicker(s.heartbeat) // a quiet feed's comment keeps proxies from closing it
	defer beat.Stop()
	done := c.Request.Context().Done()
	for {
		select {
		case <-done:
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			if pass(m) {
				writeBy()
				send(m)
				w.Flush()
			}
		case <-beat.C:
			writeBy()
			fmt.Fprint(w, ": ping\n\n")
			w.Flush()
		}
	}
}
