package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// cleanText makes s storable in a text column of either database: PostgreSQL refuses
// the NUL character and invalid UTF-8 in text, so both become U+FFFD. Every string
// written goes through here; the common case allocates nothing.
func cleanText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsRune(s, 0) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// dbTime normalizes a time for storage: UTC (so that SQLite's text timestamps compare
// in time order) and microseconds (PostgreSQL's precision, so that both databases give
// back what they were given).
func dbTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// fromNullTime reads a nullable time column.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// encodeJSON encodes v for a JSON text column.
func encodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return cleanText(string(b)), nil
}

// rawJSON checks a caller-provided JSON document for a text column; empty stays empty.
func rawJSON(what string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	if !json.Valid(raw) {
		return "", fmt.Errorf("%s is not valid JSON", what)
	}
	return cleanText(string(raw)), nil
}

// toRaw turns a JSON text column back into a RawMessage; empty gives nil.
func toRaw(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}

// generatedDedupeKey stands in for a missing dedupe key: the column is unique, and an
// event without a natural key is never a duplicate of another.
func generatedDedupeKey() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+).
	return "auto:" + hex.EncodeToString(b[:])
}

// limitClause is " LIMIT n", n at least 1: a row count the code chose, written into
// the statement rather than bound. SQLite compiles a statement whose LIMIT is a
// bound parameter a second time when it first runs, to plan with the value, and
// the SQLite driver compiles every statement on each use: a bound LIMIT made each
// such read cost two compilations.
func limitClause(n int) string {
	return " LIMIT " + strconv.Itoa(max(n, 1))
}

// clampLimit applies the admin lists' page size bounds.
func clampLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultLimit
	case n > MaxLimit:
		return MaxLimit
	default:
		return n
	}
}

// encodeCursor makes the opaque cursor after row id of a list. The list name is part of
// it so that a cursor of one list is refused by another.
func encodeCursor(list string, id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + ":" + strconv.FormatInt(id, 10)))
}

// decodeCursor returns the row id a cursor points after; 0 for the empty cursor.
func decodeCursor(list, cursor string) (int64, error) {
	if cursor == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil {
		return 0, fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	rest, ok := strings.CutPrefix(string(b), list+":")
	if !ok {
		return 0, fmt.Errorf("%w: not a %s cursor", ErrBadCursor, list)
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: bad position", ErrBadCursor)
	}
	return id, nil
}

// where accumulates the conditions and arguments of a dynamic WHERE clause.
type where struct {
	conds []string
	args  []any
}

// add appends one condition with its arguments.
func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// addEq appends "column = value" unless value is empty.
func (w *where) addEq(column, value string) {
	if value != "" {
		w.add(column+" = ?", cleanText(value))
	}
}

// String renders the clause, including the WHERE keyword, or "" without conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}
