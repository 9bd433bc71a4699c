package store

import (
	"net/url"
	"strings"
)

// Describe names the database a DSN points at, for logs and health answers,
// without credentials: "sqlite data/fixit.db" or "postgres db.local:5432/fixit".
func Describe(dsn string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		path, _, _ := strings.Cut(dsn, "?")
		return "sqlite " + path
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres (unparsable URL)"
	}
	return "postgres " + u.Host + u.Path
}
