package store

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
)

// Errors that callers branch on. Every other error is an infrastructure failure.
var (
	// ErrNotFound means the requested row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means an optimistic update lost: the dialog's revision moved on, or
	// an outbox item is no longer in the state the caller expected.
	ErrConflict = errors.New("concurrent update")
	// ErrKeyTaken means a correlation key is already bound to another live dialog.
	ErrKeyTaken = errors.New("correlation key bound to another dialog")
	// ErrSettled means an event is no longer pending: another worker (a rescan, or
	// another replica) already processed it. The step that tried must roll back.
	ErrSettled = errors.New("event already settled")
	// ErrBadCursor means a pagination cursor was not produced by this store for that
	// list; the admin API answers 400.
	ErrBadCursor = errors.New("invalid cursor")
)

// EventStatus is the processing status of an inbound event.
type EventStatus string

// Event statuses.
const (
	EventPending   EventStatus = "pending"
	EventProcessed EventStatus = "processed"
	EventUnrouted  EventStatus = "unrouted"
	EventFailed    EventStatus = "failed"
)

// Valid reports whether s is one of the event statuses.
func (s EventStatus) Valid() bool { return slices.Contains(EventStatuses, s) }

// EventStatuses lists every event status.
var EventStatuses = []EventStatus{EventPending, EventProcessed, EventUnrouted, EventFailed}

// TimerStatus is the status of a durable timer.
type TimerStatus string

// Timer statuses.
const (
	TimerPending   TimerStatus = "pending"
	TimerFired     TimerStatus = "fired"
	TimerCancelled TimerStatus = "cancelled"
)

// OutboxStatus is the status of an outbound action.
type OutboxStatus string

// Outbox statuses. Failed means the remote side refused the action for good (a 4xx);
// dead means the retries ran out.
const (
	OutboxPending OutboxStatus = "pending"
	OutboxRunning OutboxStatus = "running"
	OutboxDone    OutboxStatus = "done"
	OutboxFailed  OutboxStatus = "failed"
	OutboxDead    OutboxStatus = "dead"
)

// Valid reports whether s is one of the outbox statuses.
func (s OutboxStatus) Valid() bool { return slices.Contains(OutboxStatuses, s) }

// OutboxStatuses lists every outbox status.
var OutboxStatuses = []OutboxStatus{OutboxPending, OutboxRunning, OutboxDone, OutboxFailed, OutboxDead}

// Event is a stored inbound event: the normalized event plus its place in the inbox.
// Event.ID is the decimal form of Seq.
type Event struct {
	event.Event
	// Seq is the arrival order, assigned on append; it never repeats.
	Seq        int64
	Status     EventStatus
	DialogID   *int64
	Error      string
	Attempts   int
	ReceivedAt time.Time
	// Deliveries are the dialogs the event was applied to when it went to more
	// than the one DialogID names (an alongside flow took it); filled by
	// ListEvents only.
	Deliveries []EventDelivery
}

// AppendResult is the outcome of appending one event, in the order of the input.
type AppendResult struct {
	// Seq is the event's sequence number: new, or the one stored first under the same
	// dedupe key when Duplicate is true.
	Seq       int64
	Duplicate bool
}

// DialogRoute is what routing needs of the live dialog an event's keys lead to:
// its id, and the channel and business number its conversation is on.
type DialogRoute struct {
	ID             int64
	Channel        string
	BusinessNumber string
}

// Dialog is one running or ended conversation of a flow, as stored: the dialog
// with the store's bookkeeping around it. Keys is filled by LoadDialog only.
type Dialog struct {
	dialog.Dialog
	UpdatedAt time.Time
	// LastEventID is the Seq of the last event the dialog processed (0 = none).
	LastEventID int64
	// Revision counts committed updates; UpdateDialog succeeds only on the revision it read.
	Revision int64

	// stored is the dialog's columns as last read or written: UpdateDialog writes
	// only the ones that differ (an unchanged status or state then costs no index
	// update). Copies of a Dialog share it; it is replaced, never changed.
	stored *storedColumns
}

// DialogKey is a correlation key bound to a dialog. Active keys route events; a key
// stays recorded, inactive, after its dialog ends.
type DialogKey struct {
	Key      string
	DialogID int64
	Active   bool
	// Scope is "" for a key of an ordinary flow's dialog, the flow's name for one
	// of an alongside flow's: a key routes to one live dialog per scope.
	Scope     string
	CreatedAt time.Time
}

// HistoryEntry is one line of a dialog's audit trail.
type HistoryEntry struct {
	ID       int64
	DialogID int64
	At       time.Time
	Kind     dialog.HistoryKind
	// EventSeq is the Seq of the stored event that caused the entry, if any.
	EventSeq  *int64
	FromState string
	ToState   string
	// Detail is a JSON document chosen by the writer; empty means none.
	Detail json.RawMessage
}

// Timer is a durable timer of a dialog's state.
type Timer struct {
	ID        int64
	DialogID  int64
	State     string
	Name      string
	DueAt     time.Time
	Status    TimerStatus
	CreatedAt time.Time
}

// OutboxItem is one outbound action waiting for, in, or after delivery.
type OutboxItem struct {
	ID       int64
	DialogID *int64
	Kind     string
	// Params is the action's JSON input.
	Params json.RawMessage
	Status OutboxStatus
	// Attempts counts claims, so it includes the attempt in progress.
	Attempts  int
	NextAt    time.Time
	LastError string
	ErrorCode string
	// Result is the action's JSON output once done; empty before.
	Result    json.RawMessage
	CreatedAt time.Time
	UpdatedAt time.Time
	// LockedUntil is the end of the current claim's lease; zero when not running.
	LockedUntil time.Time
	// Requeues counts the times an operator queued the item again after it failed
	// or died (RequeueOutbox).
	Requeues int
	// Delivery is the message a send made (Delivery.MessageID: a wamid, or a
	// Telegram message id) and how far it got, as the channel reported it; empty
	// for other actions and before the send.
	Delivery Delivery
}

// DeliveryStatus is how far a sent message got. It only moves forward: sent <
// delivered < read, and failed is final (WhatsApp reports statuses out of order).
type DeliveryStatus string

// Delivery statuses; the empty status means no message (yet).
const (
	DeliverySent      DeliveryStatus = "sent"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryRead      DeliveryStatus = "read"
	DeliveryFailed    DeliveryStatus = "failed"
)

// DeliveryStatuses lists the delivery statuses in their order.
var DeliveryStatuses = []DeliveryStatus{DeliverySent, DeliveryDelivered, DeliveryRead, DeliveryFailed}

// Rank orders the statuses: 0 for none (or an unknown one), then 1 to 4 in the
// order of DeliveryStatuses. A status replaces another only when it ranks higher.
func (s DeliveryStatus) Rank() int { return slices.Index(DeliveryStatuses, s) + 1 }

// Delivery is a report about a sent message: the send's own outcome, or a
// channel's receipt.
type Delivery struct {
	MessageID string
	Status    DeliveryStatus
	Code      string // a failed delivery's error code (WhatsApp's, or a connector's)
	Error     string // and its title
	At        time.Time
}

// FlowVersion is the source of a flow file, stored by its content hash so that a
// dialog can be resumed on the version it started on, across restarts.
type FlowVersion struct {
	Hash      string
	Flow      string
	File      string
	Source    string
	CreatedAt time.Time
}

// DialogCount is the number of dialogs in one (flow, state, status) group.
type DialogCount struct {
	Flow   string
	State  string
	Status dialog.Status
	Count  int64
}

// Page selects one page of a list. Lists are ordered newest first (id descending);
// Cursor is the Next value of the previous page, "" for the first.
type Page struct {
	// Limit defaults to DefaultLimit and is cut to MaxLimit.
	Limit  int
	Cursor string
}

// Page size bounds of the admin lists.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// DialogFilter narrows ListDialogs; empty fields match everything. Key matches any
// key ever bound to the dialog, active or not.
type DialogFilter struct {
	Flow   string
	State  string
	Status dialog.Status
	Key    string
	// Since, when set, keeps the dialogs started at or after it.
	Since time.Time
}

// EventFilter narrows ListEvents; empty fields match everything.
type EventFilter struct {
	Source string
	Status EventStatus
	// DialogID, when not 0, keeps the events processed for that dialog (the one
	// their row names, or one of their deliveries).
	DialogID int64
}

// OutboxFilter narrows ListOutbox; empty fields match everything.
type OutboxFilter struct {
	Status OutboxStatus
	// DialogID, when not 0, keeps the actions of that dialog.
	DialogID int64
}

// Store is fixit's durable state. Methods are safe for concurrent use.
type Store interface {
	// AppendEvents stores events in one transaction, in order, and reports each one's
	// Seq. An event whose dedupe key is already stored, or appeared earlier in the same
	// call, is not stored again: its result has Duplicate set and the first one's Seq.
	// An event with an empty dedupe key gets a unique generated one. Message events
	// of WhatsApp and Telegram move their contact's last inbound time forward. An
	// event that comes with files to fetch (event.HasFetch) is stored waiting for
	// them, with the action that fetches them (event.KindFetch).
	AppendEvents(ctx context.Context, events []event.Event) ([]AppendResult, error)
	// PendingEvents returns up to limit pending events with Seq > afterSeq, in Seq order.
	PendingEvents(ctx context.Context, afterSeq int64, limit int) ([]Event, error)
	// GetEvent returns the event with the given Seq, or ErrNotFound.
	GetEvent(ctx context.Context, seq int64) (*Event, error)
	// AwaitingFiles reports whether a pending event stored before seq that carries
	// one of keys still waits for its files.
	AwaitingFiles(ctx context.Context, before int64, keys []string) (bool, error)
	// AwaitingFileKeys returns the keys of the pending events stored with files to
	// fetch, each once.
	AwaitingFileKeys(ctx context.Context) ([]string, error)

	// FindDialogByKeys returns the live dialog bound to the first of keys that is bound
	// to one in the ordinary scope, or nil and no error when none is.
	FindDialogByKeys(ctx context.Context, keys []string) (*Dialog, error)
	// RouteKeys is FindDialogByKeys for routing: the dialog's id, channel and
	// business number only, or nil and no error when no dialog is bound.
	RouteKeys(ctx context.Context, keys []string) (*DialogRoute, error)
	// FindScopedDialogs returns, for each key scope other than the ordinary one
	// (each alongside flow), the live dialog bound to the first of keys bound in
	// that scope, ordered by scope.
	FindScopedDialogs(ctx context.Context, keys []string) ([]ScopedDialog, error)
	// EventDeliveries returns the deliveries recorded for an event, by dialog id.
	EventDeliveries(ctx context.Context, seq int64) ([]EventDelivery, error)
	// GetDialog returns a dialog, or ErrNotFound.
	GetDialog(ctx context.Context, id int64) (*Dialog, error)
	// LoadDialog returns a dialog with its active keys in Keys, or ErrNotFound.
	LoadDialog(ctx context.Context, id int64) (*Dialog, error)
	// DialogKeys returns every key ever bound to a dialog, oldest first.
	DialogKeys(ctx context.Context, dialogID int64) ([]DialogKey, error)
	// Step runs fn in one transaction: everything fn does through tx commits together
	// when fn returns nil and rolls back otherwise. fn's error is returned as is.
	Step(ctx context.Context, fn func(tx StepTx) error) error
	// Steps runs fns one after another in one transaction, each as if in its own: a
	// fn that returns an error has everything it did rolled back and that error in
	// its place in the result; the others commit together. If the transaction itself
	// fails, every fn that had succeeded gets that error. A fn may be called more than
	// once: when one fails, the whole batch is rolled back and run again with a
	// savepoint per fn, so a fn must start from the same inputs each time it is
	// called and keep nothing from a call that was rolled back.
	Steps(ctx context.Context, fns []func(tx StepTx) error) []error
	// SingleWriter reports whether every write goes through one connection (SQLite):
	// concurrent steps then wait for each other anyway, and grouping them with Steps
	// shares one commit between them.
	SingleWriter() bool

	// DueTimers returns up to limit pending timers due at or before now, earliest first.
	// Claim one with StepTx.FireTimer.
	DueTimers(ctx context.Context, now time.Time, limit int) ([]Timer, error)

	// ClaimOutbox atomically claims up to limit items that are pending and due at now,
	// or running with an expired lease (their worker died): they become running with
	// a lease until now+lease and one more attempt.
	ClaimOutbox(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]OutboxItem, error)
	// CompleteOutbox marks a running item done with its JSON result.
	CompleteOutbox(ctx context.Context, id int64, result json.RawMessage) error
	// RetryOutbox puts a running item back to pending, due at nextAt, noting the error.
	RetryOutbox(ctx context.Context, id int64, nextAt time.Time, errCode, errText string) error
	// FailOutbox ends a running item as OutboxFailed or OutboxDead, noting the error.
	FailOutbox(ctx context.Context, id int64, status OutboxStatus, errCode, errText string) error

	// LastInbound returns when the contact last wrote to us, or the zero time.
	LastInbound(ctx context.Context, channel, contactID string) (time.Time, error)

	// GetFlowVersion returns a stored flow version, or ErrNotFound.
	GetFlowVersion(ctx context.Context, hash string) (*FlowVersion, error)
	// WaitingDialogs counts the live dialogs of flow on versions other than
	// exceptHash, by version and state.
	WaitingDialogs(ctx context.Context, flow, exceptHash string) ([]WaitingCount, error)
	// AdoptDialogs moves the live dialogs of flow on other versions to toHash,
	// renaming states as moves says (old → new), and reports how many moved.
	AdoptDialogs(ctx context.Context, flow, toHash string, moves map[string]string) (int64, error)
	// SaveFlowVersion stores a flow version unless its hash is already stored.
	SaveFlowVersion(ctx context.Context, v FlowVersion) error

	// RequeueOutbox queues a dead or failed item again, due at now, with a fresh
	// budget of attempts and the same id (a connector's idempotency key); it counts
	// the requeue. ErrNotFound, or ErrConflict when the item is not dead or failed.
	RequeueOutbox(ctx context.Context, id int64, now time.Time) (*OutboxItem, error)
	// RequeueEvent makes an unrouted or failed event pending again, to be routed
	// anew. ErrNotFound, or ErrConflict when it is pending or processed.
	RequeueEvent(ctx context.Context, seq int64) (*Event, error)
	// GetOutbox returns one outbox item, or ErrNotFound.
	GetOutbox(ctx context.Context, id int64) (*OutboxItem, error)

	// ListDialogs returns one page of dialogs, newest first, and the next cursor ("" at the end).
	ListDialogs(ctx context.Context, f DialogFilter, p Page) ([]Dialog, string, error)
	// ListEvents returns one page of events, newest first, and the next cursor ("" at the end).
	ListEvents(ctx context.Context, f EventFilter, p Page) ([]Event, string, error)
	// ListOutbox returns one page of outbox items, newest first, and the next cursor ("" at the end).
	ListOutbox(ctx context.Context, f OutboxFilter, p Page) ([]OutboxItem, string, error)
	// DialogHistory returns a dialog's history, oldest first.
	DialogHistory(ctx context.Context, dialogID int64) ([]HistoryEntry, error)
	// DialogTimers returns all timers of a dialog, oldest first.
	DialogTimers(ctx context.Context, dialogID int64) ([]Timer, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Counts returns the number of dialogs per flow, state and status.
	Counts(ctx context.Context) ([]DialogCount, error)
	// Close releases the database.
	Close() error
}

// StepTx is what a step may do inside its transaction. Its methods use the context
// given to Store.Step.
//
// On a single-writer store (SQLite) the writes that nothing in the transaction
// reads back (UpdateDialog, AppendHistory, ScheduleTimer, CancelTimers, Enqueue,
// MarkEvent, CompleteOutbox, CompleteSend) are made together when the step, or the batch of Store.Steps,
// ends; a later call that depends on one makes it first. Their checks (a revision
// that moved on, an event settled already, an item no longer running) then fail
// the step from Store.Step or Store.Steps, with the same errors, instead of from the
// call; what they set on their arguments (IDs, revisions, times) is set at once.
type StepTx interface {
	// ClaimEvent claims a pending event for this step: on PostgreSQL it locks the
	// event's row with FOR UPDATE SKIP LOCKED, so another replica's step skips it
	// at once instead of doing the same work. It reports false when the event is
	// claimed by another step or no longer pending.
	ClaimEvent(seq int64) (bool, error)
	// LockDialog loads a dialog and, on PostgreSQL, locks its row until the step ends.
	LockDialog(id int64) (*Dialog, error)
	// CreateDialog inserts d and sets its ID, timestamps and Revision (1).
	CreateDialog(d *Dialog) error
	// UpdateDialog writes d if its Revision is still current, then increments
	// d.Revision; otherwise it returns ErrConflict. Flow and CreatedAt are fixed at
	// creation. When d's status has ended, the dialog's keys are released and its
	// pending timers cancelled.
	UpdateDialog(d *Dialog) error
	// BindKey binds key to the dialog in the ordinary scope. Binding a key the
	// dialog already holds is a no-op; a key held by another live dialog gives
	// ErrKeyTaken.
	BindKey(dialogID int64, key string) error
	// BindKeyIn binds key to the dialog in scope ("" is the ordinary scope, else
	// an alongside flow's name) as BindKey does: a key is held by one live dialog
	// per scope.
	BindKeyIn(scope string, dialogID int64, key string) error
	// RecordDeliveries records the dialogs an event was applied to. A delivery
	// recorded before may be recorded again only when it had failed (a re-drive);
	// one recorded as processed gives ErrSettled.
	RecordDeliveries(ds []EventDelivery) error
	// ReleaseKeys deactivates every active key of the dialog.
	ReleaseKeys(dialogID int64) error
	// AppendHistory appends entries in one statement; a zero At means now. IDs are
	// assigned by the database and not reported back.
	AppendHistory(entries ...HistoryEntry) error
	// ScheduleTimer inserts a pending timer and sets its ID and CreatedAt.
	ScheduleTimer(t *Timer) error
	// CancelTimers cancels the dialog's pending timers of state ("" = of every
	// state): those scheduled before it, in this transaction too, and none
	// scheduled after it.
	CancelTimers(dialogID int64, state string) error
	// FireTimer marks a pending timer fired. It returns false when the timer was no
	// longer pending (fired by another replica, or cancelled).
	FireTimer(id int64) (bool, error)
	// TimerStatus returns a timer's status (after the cancels made before it in the
	// transaction), or ErrNotFound.
	TimerStatus(id int64) (TimerStatus, error)
	// Enqueue inserts a pending outbox item (due now when NextAt is zero) and sets its
	// ID, Status, NextAt and timestamps.
	Enqueue(item *OutboxItem) error
	// MarkEvent settles a pending event with the outcome of its processing. An event
	// that is no longer pending gives ErrSettled, so that a second application of the
	// same event (two workers, two replicas) rolls back instead of committing.
	MarkEvent(seq int64, status EventStatus, dialogID *int64, errText string) error
	// SaveFlowVersion stores a flow version unless its hash is already stored.
	SaveFlowVersion(v FlowVersion) error
	// AdoptDialogs moves live dialogs to a new flow version as Store.AdoptDialogs
	// does, in this transaction.
	AdoptDialogs(flow, toHash string, moves map[string]string) (int64, error)
	// AppendEvents stores events as Store.AppendEvents does, in this transaction.
	AppendEvents(events []event.Event) ([]AppendResult, error)
	// CompleteOutbox marks a running outbox item done with its JSON result. attempt
	// is the claim's (the item's Attempts as claimed; 0: any claim): ErrConflict when
	// the item is no longer running under it (finished, or its lease ran out and
	// another worker claimed it again).
	CompleteOutbox(id int64, attempt int, result json.RawMessage) error
	// CompleteSend completes a send as CompleteOutbox does and records the message
	// it made: sent.MessageID (required) and sent's status, code, error and time (a
	// zero At means now), as SetDelivery would with a new message id, in the same
	// update.
	CompleteSend(id int64, attempt int, result json.RawMessage, sent Delivery) error
	// FailOutbox ends a running outbox item as OutboxFailed or OutboxDead; attempt
	// and ErrConflict as for CompleteOutbox.
	FailOutbox(id int64, attempt int, status OutboxStatus, errCode, errText string) error
	// RetryOutbox puts a running item back to pending, due at nextAt; attempt and
	// ErrConflict as for CompleteOutbox.
	RetryOutbox(id int64, attempt int, nextAt time.Time, errCode, errText string) error
	// SettleFiles adds fields (event.FieldFile and FieldFiles, or FieldFileError) to
	// the data of a pending event whose files were being fetched; an event no longer
	// pending is left alone.
	SettleFiles(seq int64, fields map[string]any) error
	// ClaimOutbox claims due items as Store.ClaimOutbox does, in this transaction.
	ClaimOutbox(now time.Time, limit int, lease time.Duration) ([]OutboxItem, error)
	// SetDelivery records the outcome of the send outbox item id made: its message
	// id (unless d.MessageID is empty) and d's status, which replaces the item's
	// only when it ranks higher or the message id is new (a requeued send).
	// It reports whether it changed the item.
	SetDelivery(id int64, d Delivery) (bool, error)
	// Receipt applies a channel's receipt about message d.MessageID to the item that
	// sent it, forward only, and returns that item as it is now; nil when no item
	// sent it. moved says whether the receipt changed the item.
	Receipt(d Delivery) (item *OutboxItem, moved bool, err error)
	// ReceiptsOf returns the receipts about message messageID that may not have
	// been applied to its item: the stored events with the given dedupe keys (the
	// receipts' of that message), in Seq order, whatever their status. A store
	// whose one process applies every receipt (SQLite) reads them only when a
	// receipt about the message found no item (Receipt) not long before; else none
	// can be waiting, as one stored but not yet processed finds the item when it is.
	ReceiptsOf(messageID string, keys []string) ([]Event, error)
}
