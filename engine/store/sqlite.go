package store

import (
	"net/url"

	// GORM's SQLite dialector over github.com/glebarez/go-sqlite, the database/sql
	// driver of modernc.org/sqlite: SQLite translated to pure Go, no cgo.
	"github.com/glebarez/sqlite"
	"gorm.io/gorm"
)

// sqliteTimeLayout is how times are written to and read from SQLite's DATETIME
// columns. In UTC ("+00:00") the text sorts in time order, so due_at <= ? compares
// times: the zone sign '+' sorts before the fraction's '.', which sorts before digits.
// It is the driver's own write format (it has no setting for it; its one named
// alternative, _time_format=sqlite, is the same layout and would make it ignore
// _txlock), and the first one it tries when it reads a DATETIME column back.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// sqliteDialector is glebarez/sqlite's dialector with one change, Explain.
//
// Its Initialize opens a new connection pool each time it runs (no Conn given):
// Open opens the same DSN more than once (the single writer and the checkpointer),
// and each must get a pool of its own.
type sqliteDialector struct {
	*sqlite.Dialector
}

// Explain returns the statement as written, its values left out. GORM asks for it
// on every Scan, whatever the logger (it hands it to a recorder), and spelling the
// values into the text cost 6% of all allocations in the end-to-end walk, most of it
// on the single writer; fixit never logs SQL (the values carry customer text).
func (sqliteDialector) Explain(sql string, _ ...any) string { return sql }

// newSQLiteDialector is the dialector of a driver DSN.
func newSQLiteDialector(dsn string) sqliteDialector {
	return sqliteDialector{&sqlite.Dialector{DSN: dsn}}
}

// sqliteURI is the driver's DSN for a database file: a file: URI with fixit's
// pragmas and the caller's own query parameters after them.
func sqliteURI(path, userParams string) string {
	u := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + sqlitePragmas
	if userParams != "" {
		u += "&" + userParams
	}
	return u
}

// SQLiteDialector is the GORM dialector fixit uses for the SQLite file at path (with
// fixit's pragmas; query parameters after a '?' go to the driver). The bench's
// reference server opens its database through it, to measure the same driver.
func SQLiteDialector(path string) (gorm.Dialector, error) {
	dsn, err := sqliteDSN(path)
	if err != nil {
		return nil, err
	}
	return newSQLiteDialector(dsn), nil
}
