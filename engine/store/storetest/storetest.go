// Package storetest gives tests a database to run against: a SQLite file in the
// test's temporary folder, or a fresh PostgreSQL database that is dropped when the
// test ends. The store, the processor and the end-to-end tests of the binary all
// run against both.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"
)

// EachDB runs fn as two subtests, "sqlite" and "postgres", each with the DSN of a
// fresh, empty database (see PostgresDSN for when the PostgreSQL run is skipped).
func EachDB(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, filepath.Join(t.TempDir(), "fixit.db")) })
	t.Run("postgres", func(t *testing.T) { fn(t, PostgresDSN(t)) })
}

// DefaultAdminURL is the administrative PostgreSQL URL the tests use unless FIXIT_TEST_PG
// says otherwise; the role must be allowed to create databases.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// PostgresDSN creates a fresh, empty database for one test and returns its URL; the
// database is dropped when the test ends. When PostgreSQL cannot be reached the test is
// skipped, unless CI is set: CI must provide PostgreSQL, so there it fails.
func PostgresDSN(tb testing.TB) string {
	tb.Helper()
	admin := os.Getenv("FIXIT_TEST_PG")
	if admin == "" {
		admin = DefaultAdminURL
	}
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("FIXIT_TEST_PG is not a URL: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := gorm.Open(postgres.Open(admin), &gorm.Config{Logger: gormlogger.Discard, DisableAutomaticPing: true})
	if err == nil {
		sqlDB, dbErr := db.DB()
		if err = dbErr; err == nil {
			if err = sqlDB.PingContext(ctx); err != nil {
				_ = sqlDB.Close()
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("PostgreSQL at %s is unreachable and CI is set (CI must start PostgreSQL): %v", u.Redacted(), err)
		}
		tb.Skipf("skipping the PostgreSQL run: %s is unreachable (set FIXIT_TEST_PG to point elsewhere; with CI set this fails): %v",
			u.Redacted(), err)
	}
	sqlDB, _ := db.DB()

	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "fixit_test_" + hex.EncodeToString(b[:])
	if err := db.WithContext(ctx).Exec("CREATE DATABASE " + name).Error; err != nil {
		_ = sqlDB.Close()
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		// Runs after the store's own Close (cleanups run last-in first-out); FORCE
		// ends any connection a failed test left behind.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.WithContext(ctx).Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)").Error; err != nil {
			tb.Errorf("drop test database %s: %v", name, err)
		}
		_ = sqlDB.Close()
	})

	u.Path = "/" + name
	return u.String()
}
