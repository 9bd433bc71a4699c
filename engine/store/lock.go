package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrInUse means a SQLite database is locked by another process: a running
// `fixit serve`, or a restore or copy in progress.
var ErrInUse = errors.New("database in use by another fixit process")

// Lock claims the SQLite database named by dsn for this process: `fixit serve`
// holds it while it runs (a SQLite file has one server), and restore and copy take
// it to be sure no server is running. Backups do not need it. The lock is released
// by the returned function, after the store is closed, or when the process ends,
// however it ends. A PostgreSQL URL needs no lock: Lock returns a no-op.
func Lock(dsn string) (release func(), err error) {
	if IsPostgres(dsn) {
		return func() {}, nil
	}
	path := SQLitePath(dsn)
	if path == "" {
		return nil, errors.New("lock database: empty SQLite path")
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory %s: %w", dir, err)
		}
	}
	f, err := lockFile(path)
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}

// MigrationLockID is the PostgreSQL advisory lock every migration transaction
// takes first: a server starting on a database whose lock another session holds
// waits in its migrations (the end-to-end tests hold it to catch a server before
// it is ready).
const MigrationLockID = lockMigrate

// IsPostgres reports whether dsn is a PostgreSQL URL rather than a SQLite path.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// SQLitePath is the file path of a SQLite dsn, without the driver parameters that
// may follow a '?'.
func SQLitePath(dsn string) string {
	path, _, _ := strings.Cut(dsn, "?")
	return path
}
