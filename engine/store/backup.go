package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"
)

// tables are fixit's tables in the order a copy fills them: every table after
// the ones it refers to. schema_migrations is left out: each store migrates itself.
// The files table describes files whose contents live in the file store's folder
// (FIXIT_FILES), outside the database: a backup carries the rows, not the contents.
var tables = []string{"flow_versions", "dialogs", "dialog_keys", "events", "history", "timers", "outbox", "event_deliveries",
	"files", "contacts"}

// TableCount is the number of rows of one table.
type TableCount struct {
	Table string
	Rows  int64
}

// errPostgresBackup says where PostgreSQL's backups come from.
var errPostgresBackup = errors.New("a PostgreSQL database is backed up and restored with pg_dump and pg_restore (see the README)")

// Backup writes a consistent copy of the SQLite database named by dsn into the new
// file dest, also while `fixit serve` is writing to it: SQLite's VACUUM INTO reads
// one snapshot (a read transaction, which in WAL mode never blocks the writer) and
// writes it compacted. The copy is written beside dest first and renamed into place
// once checked, so dest is never a partial file. It reports the copy's row counts.
func Backup(ctx context.Context, dsn, dest string) ([]TableCount, error) {
	if IsPostgres(dsn) {
		return nil, errPostgresBackup
	}
	src := SQLitePath(dsn)
	if fi, err := os.Stat(src); err != nil {
		return nil, fmt.Errorf("back up %s: %w", src, err)
	} else if fi.Size() == 0 {
		return nil, fmt.Errorf("back up %s: the file is empty", src)
	}
	if _, err := os.Lstat(dest); err == nil {
		return nil, fmt.Errorf("back up to %s: the file exists; give a new name", dest)
	}
	tmp := dest + ".partial"
	_ = os.Remove(tmp) // a leftover of an interrupted backup
	err := withSQLite(dsn, func(db *gorm.DB) error {
		return db.WithContext(ctx).Exec(`VACUUM INTO ?`, tmp).Error
	})
	if err != nil {
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("back up %s: %w", src, err)
	}
	counts, err := checkSQLite(ctx, tmp)
	if err == nil {
		err = install(tmp, dest)
	}
	if err != nil {
		removeSQLite(tmp)
		return nil, fmt.Errorf("back up %s: %w", src, err)
	}
	return counts, nil
}

// Restore replaces the SQLite database named by dsn with the backup file backup,
// on a stopped instance: it takes the database's lock (see Lock), so it refuses
// while `fixit serve` runs on it. The backup is checked on a copy before anything
// is replaced; the database it replaces is kept beside it as <file>.pre-restore
// (with its -wal, if any). It reports the restored row counts.
func Restore(ctx context.Context, dsn, backup string) ([]TableCount, error) {
	if IsPostgres(dsn) {
		return nil, errPostgresBackup
	}
	target := SQLitePath(dsn)
	if _, err := os.Stat(backup); err != nil {
		return nil, fmt.Errorf("restore from %s: %w", backup, err)
	}
	release, err := Lock(dsn)
	if errors.Is(err, ErrInUse) {
		return nil, fmt.Errorf("restore %s: a running fixit uses it; stop it first", target)
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w", target, err)
	}
	defer release()

	tmp := target + ".restoring"
	removeSQLite(tmp)
	if err := copyFile(backup, tmp); err != nil {
		return nil, fmt.Errorf("restore from %s: %w", backup, err)
	}
	counts, err := checkSQLite(ctx, tmp)
	if err != nil {
		removeSQLite(tmp)
		return nil, fmt.Errorf("restore from %s: %w", backup, err)
	}
	// Keep the database being replaced, with its WAL (which may hold committed
	// changes not yet in the file); the -shm is only an index of the WAL.
	if fi, err := os.Stat(target); err == nil && fi.Size() > 0 {
		kept := target + ".pre-restore"
		removeSQLite(kept)
		for _, suffix := range []string{"", "-wal"} {
			if err := os.Rename(target+suffix, kept+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				removeSQLite(tmp)
				return nil, fmt.Errorf("restore %s: keep the old database: %w", target, err)
			}
		}
	}
	_ = os.Remove(target + "-wal")
	_ = os.Remove(target + "-shm")
	if err := install(tmp, target); err != nil {
		return nil, fmt.Errorf("restore %s: %w", target, err)
	}
	return counts, nil
}

// withSQLite opens the SQLite database named by dsn on one connection, without
// migrating it, runs fn and closes it.
func withSQLite(dsn string, fn func(*gorm.DB) error) error {
	dialector, err := SQLiteDialector(dsn)
	if err != nil {
		return err
	}
	db, err := gorm.Open(dialector, &gorm.Config{Logger: gormlogger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	sqlDB.SetMaxOpenConns(1)
	err = fn(db)
	if cerr := sqlDB.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close database: %w", cerr)
	}
	return err
}

// checkSQLite checks that the file at path is a sound fixit database no newer
// than this binary, and counts its rows.
func checkSQLite(ctx context.Context, path string) ([]TableCount, error) {
	var counts []TableCount
	err := withSQLite(path, func(db *gorm.DB) error {
		db = db.WithContext(ctx)
		var check []string
		if err := db.Raw(`PRAGMA quick_check`).Scan(&check).Error; err != nil {
			return fmt.Errorf("check %s: %w", path, err)
		}
		if len(check) != 1 || check[0] != "ok" {
			return fmt.Errorf("check %s: the database is damaged: %v", path, check)
		}
		var version int
		if err := db.Raw(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version).Error; err != nil {
			return fmt.Errorf("check %s: not a fixit database: %w", path, err)
		}
		if known := migrations[len(migrations)-1].version; version > known {
			return fmt.Errorf("check %s: written by a newer fixit (schema %d; this one knows %d)", path, version, known)
		}
		var err error
		counts, err = countRows(db)
		return err
	})
	return counts, err
}

// countRows counts the rows of every table through db.
func countRows(db *gorm.DB) ([]TableCount, error) {
	counts := make([]TableCount, 0, len(tables))
	for _, t := range tables {
		var n int64
		if err := db.Raw(`SELECT COUNT(*) FROM ` + t).Scan(&n).Error; err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		counts = append(counts, TableCount{Table: t, Rows: n})
	}
	return counts, nil
}

// install moves the finished file tmp to dest: private to its owner (it holds
// customers' messages), synced, renamed, and the rename synced.
func install(tmp, dest string) error {
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Chmod(0o600)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dest)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", dest, err)
	}
	if dir, err := os.Open(filepath.Dir(dest)); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	return nil
}

// copyFile copies src to the new file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(dst)
	}
	return err
}

// removeSQLite removes a SQLite file with its -wal and -shm.
func removeSQLite(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}
