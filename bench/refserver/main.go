package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/fixit-exchange/fixit/bench/internal/serve"
	"github.com/fixit-exchange/fixit/engine/store"
)

// maxBody is the largest webhook body read, as in fixit.
const maxBody = 3 << 20

const schema = `
CREATE TABLE IF NOT EXISTS dialogs (
	id          INTEGER PRIMARY KEY,
	contact_key TEXT NOT NULL UNIQUE,
	updated_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
	id          INTEGER PRIMARY KEY,
	dedupe_key  TEXT NOT NULL UNIQUE,
	dialog_id   INTEGER NOT NULL REFERENCES dialogs(id),
	body        TEXT NOT NULL,
	received_at INTEGER NOT NULL
);`

const (
	upsertDialog = `INSERT INTO dialogs (contact_key, updated_at) VALUES (?, ?)
ON CONFLICT (contact_key) DO UPDATE SET updated_at = excluded.updated_at
RETURNING id`
	insertMessage = `INSERT INTO messages (dedupe_key, dialog_id, body, received_at) VALUES (?, ?, ?, ?)
ON CONFLICT (dedupe_key) DO NOTHING`
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := run(os.Args[1:], logger); err != nil {
		fmt.Fprintln(os.Stderr, "refserver:", err)
		os.Exit(1)
	}
}

func run(args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("refserver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8001", "listen address (loopback)")
	dbPath := fs.String("db", "", "SQLite file (required)")
	secret := fs.String("secret", "fixit-dev-app-secret", "APP_SECRET: HMAC key of X-Hub-Signature-256")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dbPath == "" || *secret == "" {
		return errors.New("-db and -secret are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	db, err := openDB(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	h, err := newHandler(ctx, db, []byte(*secret), logger)
	if err != nil {
		return err
	}
	defer h.close()

	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/waba", h)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := db.PingContext(r.Context()); err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	return serve.Run(ctx, *addr, mux, 5*time.Second)
}

// openDB opens path through fixit's own SQLite dialector (same driver, same
// pragmas), on one connection, and creates the schema.
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	dialector, err := store.SQLiteDialector(path)
	if err != nil {
		return nil, err
	}
	gdb, err := gorm.Open(dialector, &gorm.Config{
		Logger:                 gormlogger.Discard,
		SkipDefaultTransaction: true,
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("create schema: %w", err)
	}
	return db, nil
}

// handler is the webhook: verify, decode, one transaction, 200.
type handler struct {
	db             *sql.DB
	secret         []byte
	log            *slog.Logger
	upsert, insert *sql.Stmt
}

func newHandler(ctx context.Context, db *sql.DB, secret []byte, logger *slog.Logger) (*handler, error) {
	h := &handler{db: db, secret: secret, log: logger}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{{&h.upsert, upsertDialog}, {&h.insert, insertMessage}} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			h.close()
			return nil, fmt.Errorf("prepare statement: %w", err)
		}
		*p.dst = st
	}
	return h, nil
}

func (h *handler) close() {
	for _, st := range []*sql.Stmt{h.upsert, h.insert} {
		if st != nil {
			_ = st.Close()
		}
	}
}

// payload is the part of a WhatsApp Cloud API webhook this server stores.
type payload struct {
	Object string `json:"object"`
	Entry  []struct {
		Changes []struct {
			Field string `json:"field"`
			Value struct {
				Messages []struct {
					From      string          `json:"from"`
					ID        string          `json:"id"`
					Timestamp string          `json:"timestamp"`
					Type      string          `json:"type"`
					Text      json.RawMessage `json:"text"`
				} `json:"messages"`
			} `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "body unreadable or too large", http.StatusRequestEntityTooLarge)
		return
	}
	if !h.verify(body, r.Header.Get("X-Hub-Signature-256")) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil || p.Object != "whatsapp_business_account" {
		http.Error(w, "not a WhatsApp webhook", http.StatusBadRequest)
		return
	}
	received, dups, err := h.store(r.Context(), &p)
	if err != nil {
		if r.Context().Err() == nil {
			h.log.Error("store webhook", "err", err)
		}
		http.Error(w, "storage unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"received":%d,"duplicates":%d}`, received, dups)
}

// verify checks "sha256=<hex>" over the raw body in constant time.
func (h *handler) verify(body []byte, header string) bool {
	got, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	sig, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, h.secret)
	m.Write(body)
	return hmac.Equal(sig, m.Sum(nil))
}

// store inserts every message of p and upserts its dialog in one transaction.
func (h *handler) store(ctx context.Context, p *payload) (received, dups int, err error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	upsert, insert := tx.StmtContext(ctx, h.upsert), tx.StmtContext(ctx, h.insert)
	now := time.Now().UnixMilli()
	for _, e := range p.Entry {
		for _, c := range e.Changes {
			if c.Field != "messages" {
				continue
			}
			for _, m := range c.Value.Messages {
				key := "waba:msg:" + m.ID
				var dialog int64
				if err := upsert.QueryRowContext(ctx, "waba:"+m.From, now).Scan(&dialog); err != nil {
					return 0, 0, fmt.Errorf("upsert dialog: %w", err)
				}
				res, err := insert.ExecContext(ctx, key, dialog, string(m.Text), now)
				if err != nil {
					return 0, 0, fmt.Errorf("insert message: %w", err)
				}
				if n, err := res.RowsAffected(); err == nil && n == 0 {
					dups++ // the dedupe key is known: acknowledged, stored once
					continue
				}
				received++
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("commit: %w", err)
	}
	return received, dups, nil
}
