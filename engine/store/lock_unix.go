//go:build unix

package store

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock (flock) on the file at path, creating
// it (empty, mode 0600: SQLite takes an empty file for an empty database) when it
// is missing. It fails at once when another process holds the lock.
//
// flock locks are apart from the POSIX record locks SQLite takes, with one rule to
// keep: closing any descriptor of a file drops every POSIX lock the process holds
// on it, so the lock's descriptor must stay open until the database is closed.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrInUse
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}
