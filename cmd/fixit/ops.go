package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/fixit-exchange/fixit/connectors/waba"
	"github.com/fixit-exchange/fixit/engine/store"
)

// opsContext is cancelled by SIGINT or SIGTERM, so that a backup or copy cut short
// rolls back and removes what it had written.
func opsContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func runBackup(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("backup", stderr)
	db := fs.String("db", envOr("FIXIT_DB", "data/fixit.db"), "the SQLite database to back up (default FIXIT_DB)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: fixit backup [--db PATH] FILE   (FILE must not exist; the server may be running)")
		return 2
	}
	ctx, stop := opsContext()
	defer stop()
	counts, err := store.Backup(ctx, *db, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "fixit backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backed up %s to %s\n", store.Describe(*db), fs.Arg(0))
	printCounts(stdout, counts)
	return 0
}

func runRestore(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("restore", stderr)
	db := fs.String("db", envOr("FIXIT_DB", "data/fixit.db"), "the SQLite database to replace (default FIXIT_DB)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: fixit restore [--db PATH] FILE   (stop fixit serve first)")
		return 2
	}
	ctx, stop := opsContext()
	defer stop()
	counts, err := store.Restore(ctx, *db, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "fixit restore: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s from %s (the replaced database, if any, is %s.pre-restore)\n",
		store.Describe(*db), fs.Arg(0), store.SQLitePath(*db))
	printCounts(stdout, counts)
	return 0
}

func runCopy(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("copy", stderr)
	from := fs.String("from", envOr("FIXIT_DB", "data/fixit.db"), "the database to copy (default FIXIT_DB)")
	to := fs.String("to", "", "a fresh database: a postgres:// URL (or a SQLite path)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 || *to == "" {
		fmt.Fprintln(stderr, "usage: fixit copy [--from DB] --to postgres://…   (stop fixit serve first)")
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)) // the store's migration lines
	ctx, stop := opsContext()
	defer stop()
	fmt.Fprintf(stdout, "copying %s to %s\n", store.Describe(*from), store.Describe(*to))
	// An older source is migrated first, which may need the WhatsApp number.
	numbers, err := waba.ParsePhoneNumberIDs(os.Getenv("WABA_PHONE_NUMBER_ID"))
	if err != nil {
		fmt.Fprintf(stderr, "fixit copy: %v\n", err)
		return 2
	}
	var opts []store.Option
	if len(numbers) > 0 {
		opts = append(opts, store.WithWABANumber(numbers[0]))
	}
	counts, err := store.Copy(ctx, *from, *to, log, func(c store.TableCount) {
		fmt.Fprintf(stdout, "  %-14s %d rows\n", c.Table, c.Rows)
	}, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "fixit copy: %v\n", err)
		return 1
	}
	var total int64
	for _, c := range counts {
		total += c.Rows
	}
	fmt.Fprintf(stdout, "done: %d rows, every table's count equal on both sides; point FIXIT_DB at %s and start fixit\n",
		total, store.Describe(*to))
	return 0
}

func printCounts(w io.Writer, counts []store.TableCount) {
	for _, c := range counts {
		fmt.Fprintf(w, "  %-14s %d rows\n", c.Table, c.Rows)
	}
}
