package store

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"

	// SQLite translated to pure Go (no cgo), as a database/sql driver.
	sqlite3 "github.com/ncruces/go-sqlite3/driver"
	"gorm.io/gorm"
	"gorm.io/gorm/callbacks"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/migrator"
	"gorm.io/gorm/schema"
)

// sqliteTimeLayout is how times are written to and read from SQLite's DATETIME
// columns. In UTC ("+00:00") the text sorts in time order, so due_at <= ? compares
// times: the zone sign '+' sorts before the fraction's '.', which sorts before digits.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// sqliteDialector is GORM's view of SQLite through github.com/ncruces/go-sqlite3.
// The store speaks only raw SQL through GORM (Raw, Exec, Transaction) and creates
// its schema with versioned migrations, so the dialector is small: placeholders,
// quoting, the default callbacks with RETURNING, and GORM's generic migrator.
type sqliteDialector struct{ dsn string }

var _ gorm.Dialector = sqliteDialector{}

func (sqliteDialector) Name() string { return "sqlite" }

func (d sqliteDialector) Initialize(db *gorm.DB) error {
	connector, err := (&sqlite3.SQLite{}).OpenConnector(d.dsn)
	if err != nil {
		return fmt.Errorf("open SQLite: %w", err)
	}
	db.ConnPool = sql.OpenDB(cachingConnector{connector})
	callbacks.RegisterDefaultCallbacks(db, &callbacks.Config{
		CreateClauses:        []string{"INSERT", "VALUES", "ON CONFLICT", "RETURNING"},
		UpdateClauses:        []string{"UPDATE", "SET", "FROM", "WHERE", "RETURNING"},
		DeleteClauses:        []string{"DELETE", "FROM", "WHERE", "RETURNING"},
		LastInsertIDReversed: true,
	})
	return nil
}

func (d sqliteDialector) Migrator(db *gorm.DB) gorm.Migrator {
	return migrator.Migrator{Config: migrator.Config{DB: db, Dialector: d, CreateIndexAfterCreateTable: true}}
}

// DataTypeOf maps GORM's schema types; the store's own schema never asks for them.
func (sqliteDialector) DataTypeOf(f *schema.Field) string {
	switch f.DataType {
	case schema.Bool:
		return "BOOLEAN"
	case schema.Int, schema.Uint:
		return "INTEGER"
	case schema.Float:
		return "REAL"
	case schema.Time:
		return "DATETIME"
	case schema.Bytes:
		return "BLOB"
	}
	return "TEXT"
}

func (sqliteDialector) DefaultValueOf(*schema.Field) clause.Expression {
	return clause.Expr{SQL: "NULL"}
}

func (sqliteDialector) BindVarTo(w clause.Writer, _ *gorm.Statement, _ any) { _ = w.WriteByte('?') }

// QuoteTo quotes an identifier, each dot-separated part on its own.
func (sqliteDialector) QuoteTo(w clause.Writer, s string) {
	for i, part := range strings.Split(s, ".") {
		if i > 0 {
			_ = w.WriteByte('.')
		}
		_, _ = w.WriteString("`" + strings.ReplaceAll(part, "`", "``") + "`")
	}
}

// Explain returns the statement as written, its values left out. GORM asks for it
// on every Scan, whatever the logger (it hands it to a recorder), and spelling the
// values into the text cost 6% of all allocations in the end-to-end walk, most of it
// on the single writer; fixit never logs SQL (the values carry customer text).
func (sqliteDialector) Explain(sql string, _ ...any) string { return sql }

// sqliteURI is the driver's DSN for a database file: a file: URI with fixit's
// pragmas, the time layout, and the caller's own query parameters after them.
func sqliteURI(path, userParams string) string {
	u := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + sqlitePragmas +
		"&_timefmt=" + url.QueryEscape(sqliteTimeLayout)
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
	return sqliteDialector{dsn: dsn}, nil
}
