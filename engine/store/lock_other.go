//go:build !unix

package store

import "os"

// lockFile opens the file at path without locking it: this system has no flock,
// so nothing stops a second server on the same SQLite file.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
