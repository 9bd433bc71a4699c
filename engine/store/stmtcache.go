package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
)

// stmtCacheSize bounds the prepared statements one connection keeps. The store's
// statements are a few dozen texts; batch inserts and IN lists add one text per
// size used, so a few hundred cover a busy server.
const stmtCacheSize = 512

// stmtCacheMaxText is the longest SQL text kept prepared. Longer texts are the
// multi-row inserts of big batches: each size is a statement of its own, rarely
// repeated, and a large one (SQLite's memory is capped per connection).
const stmtCacheMaxText = 4096

// cachingConnector keeps each SQLite connection's prepared statements for reuse.
//
// database/sql prepares a statement for every Exec and Query that has arguments and
// closes it afterwards, so without a cache SQLite parses and plans the same SQL
// text again for every call: in a dialog step that was a fifth of the CPU time.
// GORM's own PrepareStmt cannot serve here: it prepares a missing statement while
// holding its cache's lock, and with SQLite's one connection held by a transaction
// that waits for that lock, the two deadlock. A cache inside the connection needs
// no lock of its own beyond the connection's, and always prepares on the
// connection that runs the statement.
type cachingConnector struct {
	driver.Connector
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	inner, ok := conn.(innerConn)
	if !ok {
		return conn, nil
	}
	return &cachingConn{inner: inner, stmts: map[string]*cachedStmt{}}, nil
}

// innerConn is what the SQLite driver's connection implements and the cache needs.
type innerConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.NamedValueChecker
}

// innerStmt is what the SQLite driver's statement implements.
type innerStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
	driver.NamedValueChecker
}

// cachingConn is a connection whose statements outlive their Close: database/sql
// uses a connection from one goroutine at a time, but the mutex keeps the cache
// sound whatever the caller.
type cachingConn struct {
	inner innerConn
	mu    sync.Mutex
	stmts map[string]*cachedStmt
	clock uint64
}

var (
	_ driver.Conn               = (*cachingConn)(nil)
	_ driver.ExecerContext      = (*cachingConn)(nil)
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.NamedValueChecker  = (*cachingConn)(nil)
)

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// PrepareContext returns the cached statement for query when it is idle, or
// prepares it (and caches it, unless the same text is in use already).
func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.mu.Lock()
	c.clock++
	if s := c.stmts[query]; s != nil && !s.inUse {
		s.inUse, s.lastUse = true, c.clock
		c.mu.Unlock()
		return s, nil
	}
	c.mu.Unlock()

	st, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	inner, ok := st.(innerStmt)
	if !ok || len(query) > stmtCacheMaxText {
		return st, nil
	}
	s := &cachedStmt{innerStmt: inner, conn: c, inUse: true}

	c.mu.Lock()
	defer c.mu.Unlock()
	if _, taken := c.stmts[query]; taken {
		return s, nil // used twice at once: this one is not kept
	}
	s.cached, s.lastUse = true, c.clock
	c.stmts[query] = s
	if len(c.stmts) > stmtCacheSize {
		c.evictLocked()
	}
	return s, nil
}

// evictLocked drops the least recently used idle statement.
func (c *cachingConn) evictLocked() {
	var oldest *cachedStmt
	var key string
	for q, s := range c.stmts {
		if !s.inUse && (oldest == nil || s.lastUse < oldest.lastUse) {
			oldest, key = s, q
		}
	}
	if oldest != nil {
		delete(c.stmts, key)
		oldest.cached = false
		_ = oldest.innerStmt.Close()
	}
}

// Close finalizes every kept statement, then closes the connection.
func (c *cachingConn) Close() error {
	c.mu.Lock()
	var errs []error
	for q, s := range c.stmts {
		delete(c.stmts, q)
		s.cached = false
		if !s.inUse {
			errs = append(errs, s.innerStmt.Close())
		}
	}
	c.mu.Unlock()
	return errors.Join(append(errs, c.inner.Close())...)
}

// ExecContext runs a statement without arguments directly (it may hold several
// statements, as a schema does); one with arguments goes through PrepareContext.
func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) > 0 {
		return nil, driver.ErrSkip
	}
	return c.inner.ExecContext(ctx, query, args)
}

func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.inner.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.BeginTx(ctx, opts)
}

func (c *cachingConn) CheckNamedValue(v *driver.NamedValue) error { return c.inner.CheckNamedValue(v) }

// cachedStmt is a prepared statement that Close hands back to its connection's
// cache instead of finalizing. The driver resets a statement after each Exec and
// when its rows are closed, so the next use starts clean.
type cachedStmt struct {
	innerStmt
	conn    *cachingConn
	inUse   bool // between PrepareContext and Close
	cached  bool // kept in conn.stmts
	lastUse uint64
}

func (s *cachedStmt) Close() error {
	s.conn.mu.Lock()
	s.inUse = false
	keep := s.cached
	s.conn.mu.Unlock()
	if keep {
		return nil
	}
	return s.innerStmt.Close()
}
