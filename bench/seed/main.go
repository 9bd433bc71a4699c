package main

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/fixit-exchange/fixit/connectors/registry"
	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/event"
	"github.com/fixit-exchange/fixit/engine/store"
)

const (
	// maxDialogs bounds -dialogs: a mistyped value must not fill the disk.
	maxDialogs = 50_000_000
	// contactBase is the wa_id of the first seeded contact. bench/loadgen's contacts
	// are 79160000000 + [0, 1000000); these are 79900000000 + [0, maxDialogs).
	contactBase int64 = 79_900_000_000
	// issueBase is the Okdesk issue number of the first seeded dialog that has one.
	issueBase int64 = 70_000_000
	// dialogsPerTx is how many dialogs (with their keys, timers and contacts) one
	// transaction writes; chunkDialogs how many are built in memory at a time.
	dialogsPerTx = 100_000
	chunkDialogs = 10_000
	// maxParams bounds the parameters of one statement: the SQLite driver finds
	// each parameter's value by a scan of all of them, so binding costs the square
	// of their number (a 2,000-row insert of dialogs took a second to bind).
	maxParams = 256
	// rowsPerInsert is the size of a multi-row INSERT (fewer when the table's
	// columns would pass maxParams). chunkDialogs is a multiple of it, so that a
	// chunk's dialogs are stored before its keys, timers and contacts refer to them;
	// the children's statements stay full across chunks, and only the last one of
	// each table is shorter.
	rowsPerInsert = 16
)

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// config is the parsed command line.
type config struct {
	db      string
	dialogs int
	flow    string
	hash    string
	flows   string
}

func main() {
	err := run(os.Args[1:])
	if err == nil {
		return
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	fmt.Fprintln(os.Stderr, "seed:", err)
	var u usageError
	if errors.As(err, &u) {
		os.Exit(2)
	}
	os.Exit(1)
}

func run(args []string) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return seed(ctx, cfg, os.Stderr)
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.StringVar(&c.db, "db", "", "SQLite file to fill, as FIXIT_DB of fixit serve (created when missing; must hold no dialogs)")
	fs.IntVar(&c.dialogs, "dialogs", -1, fmt.Sprintf("dialogs to store (0..%d)", maxDialogs))
	fs.StringVar(&c.flow, "flow", "simple_lead", "flow the dialogs run")
	fs.StringVar(&c.hash, "hash", "", "flow version (content hash) the dialogs run; default the one in -flows, another must be stored in the database already")
	fs.StringVar(&c.flows, "flows", "flows.d", "flow files, as FIXIT_FLOWS of fixit serve")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return c, usagef("unexpected arguments %q", fs.Args())
	case c.db == "":
		return c, usagef("-db is required")
	case strings.HasPrefix(c.db, "postgres://"), strings.HasPrefix(c.db, "postgresql://"):
		return c, usagef("-db %s: seed writes SQLite files only, not PostgreSQL", "postgres://…")
	case c.dialogs < 0:
		return c, usagef("-dialogs is required (0..%d)", maxDialogs)
	case c.dialogs > maxDialogs:
		return c, usagef("-dialogs %d: want at most %d", c.dialogs, maxDialogs)
	case c.flow == "":
		return c, usagef("-flow is empty")
	case c.flows == "":
		return c, usagef("-flows is empty")
	}
	return c, nil
}

// seed does the work of one run and reports on w.
func seed(ctx context.Context, c config, w io.Writer) error {
	start := time.Now()
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))

	// The flows, compiled as fixit serve compiles them.
	loader, err := engine.NewLoader(registry.DryRun())
	if err != nil {
		return err
	}
	set, diags := loader.Load(c.flows)
	if set == nil {
		return fmt.Errorf("flows in %s have errors (run `fixit validate %s`): %s", c.flows, c.flows, firstError(diags))
	}
	flow := set.Flow(c.flow)
	if flow == nil {
		names := []string{}
		for _, f := range set.Flows() {
			names = append(names, f.Name)
		}
		return usagef("-flow %s: no such flow in %s (it has %s)", c.flow, c.flows, strings.Join(names, ", "))
	}

	// The schema, by the store's own migrations, and the flow versions, as serve
	// stores them at start-up.
	st, err := store.Open(ctx, c.db, log)
	if err != nil {
		return fmt.Errorf("open %s: %w", c.db, err)
	}
	flow, err = prepareStore(ctx, st, set, flow, c)
	if cerr := st.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	prof, err := profileOf(flow)
	if err != nil {
		return err
	}

	db, err := openRaw(c.db)
	if err != nil {
		return err
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", c.db, err)
	}
	defer conn.Close()
	// For the bulk load only, on this connection: a page cache of 64 MiB instead of
	// 2 MB (well inside the driver's 256 MiB of WebAssembly memory) keeps the growing
	// indexes in memory; a rollback journal in memory and no fsync write each page
	// once, where the write-ahead log writes it twice. A crash leaves a broken file,
	// but the file is fresh anyway. The schema and the data are fixit's own.
	for _, q := range []string{`PRAGMA cache_size = -65536`, `PRAGMA journal_mode = MEMORY`, `PRAGMA synchronous = OFF`} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s on %s: %w", q, c.db, err)
		}
	}
	var seq int64
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'dialogs'`).Scan(&seq); err != nil {
		return fmt.Errorf("read the next dialog id of %s: %w", c.db, err)
	}

	g := newGenerator(flow, prof, seq+1, time.Now())
	fmt.Fprintf(w, "seed: %d dialogs of %s (version %s) into %s\n", c.dialogs, flow.Name, short(flow.Hash), c.db)
	lastReport := time.Now()
	rows, err := writeAll(ctx, conn, g, c.dialogs, func(stored int) {
		if time.Since(lastReport) >= 2*time.Second || stored == c.dialogs {
			el := time.Since(start)
			fmt.Fprintf(w, "seed: %d of %d dialogs stored (%.1f s, %.0f dialogs/s)\n", stored, c.dialogs, el.Seconds(), float64(stored)/el.Seconds())
			lastReport = time.Now()
		}
	})
	if err != nil {
		return fmt.Errorf("seed %s: %w", c.db, err)
	}
	// Back to the write-ahead log, as fixit keeps the file (it sets WAL when it
	// opens the file anyway); everything written is in the database file itself.
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return fmt.Errorf("put %s back in WAL mode: %w", c.db, err)
	}
	if mode != "wal" {
		return fmt.Errorf("put %s back in WAL mode: journal mode is still %q", c.db, mode)
	}

	counts := map[string]int64{}
	for _, t := range []string{"dialogs", "dialog_keys", "timers", "contacts"} {
		var n int64
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+t).Scan(&n); err != nil {
			return fmt.Errorf("count %s of %s: %w", t, c.db, err)
		}
		counts[t] = n
	}
	if counts["dialogs"] != int64(c.dialogs) {
		return fmt.Errorf("%s holds %d dialogs after seeding, want %d", c.db, counts["dialogs"], c.dialogs)
	}
	// The bulk load ran without fsync, so the kernel still holds most of the file
	// in dirty pages: write them out now, or it does so (and fixit's first fsync
	// waits for all of it) while fixit is being measured.
	if err := conn.Close(); err != nil {
		return fmt.Errorf("close %s: %w", c.db, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("close %s: %w", c.db, err)
	}
	if err := syncFile(c.db); err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Fprintf(w, "seed: states: %s\n", g.tally())
	fmt.Fprintf(w, "seed: done in %.1f s: %d dialogs, %d dialog keys, %d timers, %d contacts stored (%d rows, %.0f rows/s, %.0f dialogs/s); the file is %s\n",
		el.Seconds(), counts["dialogs"], counts["dialog_keys"], counts["timers"], counts["contacts"],
		rows, float64(rows)/el.Seconds(), float64(c.dialogs)/el.Seconds(), fileSize(c.db))
	return nil
}

// prepareStore checks that the database holds no dialogs, stores the flow versions
// of set, and returns the version of flow the dialogs run (-hash).
func prepareStore(ctx context.Context, st *store.GormStore, set *engine.FlowSet, flow *engine.Flow, c config) (*engine.Flow, error) {
	counts, err := st.Counts(ctx)
	if err != nil {
		return nil, fmt.Errorf("count the dialogs of %s: %w", c.db, err)
	}
	var held int64
	for _, n := range counts {
		held += n.Count
	}
	if held > 0 {
		return nil, fmt.Errorf("%s already holds %d dialogs: seed fills a fresh database", c.db, held)
	}
	for _, f := range set.Flows() {
		if err := st.SaveFlowVersion(ctx, store.FlowVersion{Hash: f.Hash, Flow: f.Name, File: f.File, Source: string(f.Source)}); err != nil {
			return nil, fmt.Errorf("save flow version %s of %s: %w", short(f.Hash), f.Name, err)
		}
	}
	if c.hash == "" || c.hash == flow.Hash {
		return flow, nil
	}
	v, err := st.GetFlowVersion(ctx, c.hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, usagef("-hash %s: no such flow version in %s (the current %s is %s); fixit could not resume dialogs on it",
			c.hash, c.db, flow.Name, flow.Hash)
	}
	if err != nil {
		return nil, fmt.Errorf("read flow version %s: %w", c.hash, err)
	}
	if v.Flow != flow.Name {
		return nil, usagef("-hash %s is a version of flow %s, not %s", c.hash, v.Flow, flow.Name)
	}
	old, diags := set.Loader().Compile([]engine.File{{Name: v.File, Data: []byte(v.Source)}})
	if old == nil || old.Flow(flow.Name) == nil {
		return nil, fmt.Errorf("flow version %s of %s does not compile: %s", short(c.hash), flow.Name, firstError(diags))
	}
	return old.Flow(flow.Name), nil
}

// openRaw opens path through fixit's own SQLite dialector (same driver, same
// pragmas) on one connection.
func openRaw(path string) (*sql.DB, error) {
	dialector, err := store.SQLiteDialector(path)
	if err != nil {
		return nil, err
	}
	gdb, err := gorm.Open(dialector, &gorm.Config{Logger: gormlogger.Discard, SkipDefaultTransaction: true})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	return db, nil
}

// writeAll stores dialogs 0 … n-1 of g with their keys, timers and contacts, in
// transactions of dialogsPerTx dialogs, calling progress after each commit. The
// dialogs are built on another goroutine (the machine has more than one core;
// SQLite writes on one) while the previous ones are written. It returns the number
// of rows written.
func writeAll(ctx context.Context, conn *sql.Conn, g *generator, n int, progress func(stored int)) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []seeded, 2)
	errc := make(chan error, 1)
	go func() {
		defer close(chunks)
		for i := 0; i < n; i += chunkDialogs {
			buf := make([]seeded, 0, min(chunkDialogs, n-i))
			for j := i; j < i+cap(buf); j++ {
				d, err := g.dialog(j)
				if err != nil {
					errc <- err
					return
				}
				buf = append(buf, d)
			}
			select {
			case chunks <- buf:
			case <-ctx.Done():
				return
			}
		}
	}()

	ins := newInserters(g.flow)
	var tx *sql.Tx
	defer func() {
		if tx != nil {
			_ = tx.Rollback()
		}
	}()
	stored, queued := 0, 0
	for buf := range chunks {
		if tx == nil {
			var err error
			if tx, err = conn.BeginTx(ctx, nil); err != nil {
				return ins.rows(), fmt.Errorf("begin a transaction (%d dialogs stored): %w", stored, err)
			}
		}
		if err := ins.write(ctx, tx, buf); err != nil {
			return ins.rows(), fmt.Errorf("%w (%d dialogs stored)", err, stored)
		}
		queued += len(buf)
		if queued%dialogsPerTx != 0 && queued != n {
			continue
		}
		if queued == n {
			if err := ins.flush(ctx, tx); err != nil {
				return ins.rows(), fmt.Errorf("%w (%d dialogs stored)", err, stored)
			}
		}
		if err := tx.Commit(); err != nil {
			return ins.rows(), fmt.Errorf("commit (%d dialogs stored): %w", stored, err)
		}
		tx = nil
		stored = queued
		progress(stored)
	}
	select {
	case err := <-errc:
		return ins.rows(), err
	default:
	}
	if stored != n {
		return ins.rows(), fmt.Errorf("stopped with %d of %d dialogs stored: %w", stored, n, context.Cause(ctx))
	}
	return ins.rows(), nil
}

// ---------------------------------------------------------------------------------
// What the dialogs hold

// stateProfile says what a dialog waiting in one state of the flow holds.
type stateProfile struct {
	name    string
	weight  int
	status  dialog.Status
	handoff string // handoff_until, JSON
	// revision is the number of committed updates a dialog has when it gets here.
	revision int64
	// fill sets the variables the dialog has by then.
	fill func(vars map[string]any, d *seeded, r *rand.Rand)
	// issue: the dialog holds an Okdesk issue (variable issue_id, key okdesk:issue:N).
	issue bool
	// timers are the state's `after` timers, pending while the dialog waits there.
	timers []*engine.Timer
	// The dialog entered the state between ageMin and ageMax ago, and started
	// (created_at) between leadMin and leadMax before that.
	ageMin, ageMax   time.Duration
	leadMin, leadMax time.Duration
}

// leadSpec is what seed knows about a state of simple_lead beyond the flow file:
// how common it is among stored dialogs, how far its dialogs got.
type leadSpec struct {
	weight   int
	revision int64
	name     bool // the customer gave a name
	problem  bool // and the problem
	issue    bool // and Okdesk created the issue
	tries    int  // unanswered name questions
	handoff  bool // the dialog is with an operator
	// brief: the dialog waits for an action's result, which takes seconds.
	brief bool
}

// simpleLead is the spread of simple_lead's dialogs in a store that has run it for a
// while: most wait with an open issue or for the payment, a fifth are in the middle
// of the questions, a fifth have ended. The states must be exactly the flow's.
var simpleLead = map[string]leadSpec{
	"ask_name":          {weight: 8, revision: 2},
	"ask_name_again":    {weight: 2, revision: 3, tries: 1},
	"ask_problem":       {weight: 8, revision: 3, name: true},
	"ask_problem_again": {weight: 2, revision: 4, name: true},
	"create_issue":      {weight: 1, revision: 4, name: true, problem: true, brief: true},
	"issue_open":        {weight: 34, revision: 5, name: true, problem: true, issue: true},
	"wait_payment":      {weight: 20, revision: 6, name: true, problem: true, issue: true},
	"operator_needed":   {weight: 1, revision: 5, tries: 2, handoff: true, brief: true},
	"with_operator":     {weight: 4, revision: 6, tries: 2, issue: true, handoff: true},
	"done":              {weight: 15, revision: 8, name: true, problem: true, issue: true},
	"abandoned":         {weight: 5, revision: 4, name: true},
}

var (
	names    = []string{"Анна", "Иван", "Мария", "Сергей", "Ольга", "Дмитрий", "Елена", "Алексей", "Наталья", "Андрей", "Татьяна", "Михаил", "Ирина", "Павел", "Светлана", "Николай"}
	problems = []string{
		"Не включается стиральная машина, на табло ошибка E21",
		"Течёт кран на кухне, вода капает постоянно",
		"Кондиционер включается, но не охлаждает",
		"Сломался замок входной двери, ключ не проворачивается",
		"Холодильник перестал морозить, морозилка тёплая",
		"Нет горячей воды, бойлер не греет",
		"Искрит розетка в коридоре",
		"Посудомоечная машина не сливает воду",
	}
)

// profileOf returns the profile of every state of f. For simple_lead it checks that
// the flow still has the states, variables, final statuses and handoffs seed
// expects; any other flow started by a WhatsApp message gets its states in equal
// shares, with the variables' defaults and the WhatsApp keys only.
func profileOf(f *engine.Flow) ([]stateProfile, error) {
	if !slices.Contains(f.StartOn, "waba.message") {
		return nil, usagef("-flow %s is not started by a WhatsApp message (waba.message): seed knows no keys for its dialogs", f.Name)
	}
	handoffs := handoffStates(f)
	var out []stateProfile
	for _, name := range f.StateNames {
		s := f.States[name]
		p := stateProfile{name: name, weight: 1, status: dialog.Active, handoff: "[]", revision: 2, timers: s.Timers,
			ageMin: time.Minute, ageMax: 30 * 24 * time.Hour, leadMin: time.Minute, leadMax: 30 * time.Minute}
		switch {
		case s.Final:
			p.status = dialog.Status(s.FinalStatus)
			p.ageMin, p.ageMax = time.Hour, 90*24*time.Hour
		case handoffs[name]:
			p.status = dialog.Handoff
		}
		if len(s.Timers) > 0 {
			// Entered recently enough that no timer is due for an hour (or for half
			// its delay, when that is shorter): none fires during a run.
			first := slices.MinFunc(s.Timers, func(a, b *engine.Timer) int { return cmp.Compare(a.After, b.After) }).After
			p.ageMax = first - min(time.Hour, first/2)
			p.ageMin = min(p.ageMin, p.ageMax)
		}
		if name == f.Initial {
			p.leadMin, p.leadMax = 0, 0
		}
		out = append(out, p)
	}
	if f.Name != "simple_lead" {
		return out, nil
	}

	for _, v := range []string{"name", "problem", "tries", "issue_id"} {
		if _, ok := f.Vars[v]; !ok {
			return nil, fmt.Errorf("flow simple_lead (%s) has no variable %q: bench/seed's profile of its dialogs needs updating", f.File, v)
		}
	}
	for name := range simpleLead {
		if f.States[name] == nil {
			return nil, fmt.Errorf("flow simple_lead (%s) has no state %q: bench/seed's profile of its dialogs needs updating", f.File, name)
		}
	}
	for i := range out {
		p := &out[i]
		spec, ok := simpleLead[p.name]
		if !ok {
			return nil, fmt.Errorf("flow simple_lead (%s) has a state %q that bench/seed does not know: its profile of the dialogs needs updating", f.File, p.name)
		}
		if spec.handoff != (p.status == dialog.Handoff) {
			return nil, fmt.Errorf("flow simple_lead (%s): state %q is no longer %s: bench/seed's profile of its dialogs needs updating",
				f.File, p.name, map[bool]string{true: "a handoff", false: "without a handoff"}[spec.handoff])
		}
		p.weight, p.revision, p.issue = spec.weight, spec.revision, spec.issue
		if spec.handoff {
			p.handoff = `["okdesk.new_ticket_status"]`
		}
		switch {
		case spec.brief:
			p.ageMin, p.ageMax = time.Second, 5*time.Minute
		case !f.States[p.name].Final && len(p.timers) == 0:
			// Waiting for the engineer or for the payment: open for weeks.
			p.ageMin, p.ageMax = 10*time.Minute, 60*24*time.Hour
			p.leadMin, p.leadMax = 5*time.Minute, 3*24*time.Hour
		}
		p.fill = func(vars map[string]any, d *seeded, r *rand.Rand) {
			if spec.name {
				vars["name"] = names[r.IntN(len(names))]
			}
			if spec.problem {
				vars["problem"] = problems[r.IntN(len(problems))]
			}
			if spec.tries > 0 {
				vars["tries"] = spec.tries
			}
			if spec.issue {
				vars["issue_id"] = d.issue
			}
		}
	}
	return out, nil
}

// handoffStates returns the states a dialog can wait in while in handoff: those
// that hand off on entry or that a handing-off branch leads to, and those reached
// from them by what still moves a dialog in handoff (its actions' results, its
// timers) without handing it back.
func handoffStates(f *engine.Flow) map[string]bool {
	out := map[string]bool{}
	hands := func(actions []*engine.Action) bool {
		return slices.ContainsFunc(actions, func(a *engine.Action) bool { return a.Kind == "handoff" })
	}
	mark := func(to string) bool {
		if s := f.States[to]; s == nil || s.Final || out[to] {
			return false
		}
		out[to] = true
		return true
	}
	for _, name := range f.StateNames {
		s := f.States[name]
		if hands(s.Enter) {
			out[name] = true
		}
		for _, bs := range s.On {
			for _, b := range bs {
				if hands(b.Actions) {
					mark(b.Goto)
				}
			}
		}
		for _, t := range s.Timers {
			if hands(t.Actions) {
				mark(t.Goto)
			}
		}
	}
	for changed := true; changed; {
		changed = false
		for _, name := range f.StateNames {
			if !out[name] {
				continue
			}
			s := f.States[name]
			branches := slices.Concat(s.On["action.done"], s.On["action.failed"])
			for _, t := range s.Timers {
				branches = append(branches, &t.Branch)
			}
			for _, b := range branches {
				if mark(b.Goto) {
					changed = true
				}
			}
		}
	}
	return out
}

// seeded is one generated dialog.
type seeded struct {
	id                        int64
	state                     *stateProfile
	waID                      string
	issue                     string // Okdesk issue number, "" when none
	vars                      string
	created, updated, entered time.Time
}

// generator builds the dialogs of one flow version: deterministic (the same N
// gives the same rows), states drawn by weight.
type generator struct {
	flow    *engine.Flow
	prof    []stateProfile
	total   int
	firstID int64
	now     time.Time
	rng     *rand.Rand
	counts  []int
	vars    map[string]any
}

func newGenerator(flow *engine.Flow, prof []stateProfile, firstID int64, now time.Time) *generator {
	g := &generator{flow: flow, prof: prof, firstID: firstID, now: now.UTC().Truncate(time.Microsecond),
		rng: rand.New(rand.NewPCG(2026, 6)), counts: make([]int, len(prof)), vars: map[string]any{}}
	for _, p := range prof {
		g.total += p.weight
	}
	return g
}

// dialog returns dialog i (0-based).
func (g *generator) dialog(i int) (seeded, error) {
	r := g.rng.IntN(g.total)
	k := 0
	for r >= g.prof[k].weight {
		r -= g.prof[k].weight
		k++
	}
	g.counts[k]++
	p := &g.prof[k]
	d := seeded{id: g.firstID + int64(i), state: p, waID: strconv.FormatInt(contactBase+int64(i), 10)}
	if p.issue {
		d.issue = strconv.FormatInt(issueBase+int64(i), 10)
	}
	d.entered = g.now.Add(-g.between(p.ageMin, p.ageMax))
	d.created = d.entered.Add(-g.between(p.leadMin, p.leadMax))
	d.updated = d.entered

	// The variables as the store writes them: JSON of the map, keys sorted.
	clear(g.vars)
	maps.Copy(g.vars, g.flow.Vars)
	if p.fill != nil {
		p.fill(g.vars, &d, g.rng)
	}
	b, err := json.Marshal(g.vars)
	if err != nil {
		return d, fmt.Errorf("encode the variables of dialog %d: %w", d.id, err)
	}
	d.vars = string(b)
	return d, nil
}

// between returns a duration in [lo, hi], to the microsecond.
func (g *generator) between(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return (lo + time.Duration(g.rng.Int64N(int64(hi-lo)))).Truncate(time.Microsecond)
}

// tally lists how many dialogs each state got.
func (g *generator) tally() string {
	parts := make([]string, len(g.prof))
	for i, p := range g.prof {
		parts[i] = fmt.Sprintf("%s %d", p.name, g.counts[i])
	}
	return strings.Join(parts, ", ")
}

func short(hash string) string { return hash[:min(12, len(hash))] }

func firstError(diags engine.Diagnostics) string {
	for _, d := range diags {
		if d.Severity == engine.SevError {
			return d.String()
		}
	}
	return "unknown error"
}

// syncFile flushes the file at path to the disk.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s to flush it: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("flush %s to disk: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("flush %s to disk: %w", path, err)
	}
	return nil
}

func fileSize(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return "of unknown size"
	}
	return fmt.Sprintf("%.0f MiB on disk", float64(fi.Size())/(1<<20))
}

// ---------------------------------------------------------------------------------
// Multi-row INSERTs

// inserter batches the rows of one table into multi-row INSERT statements, each
// size's text built once.
type inserter struct {
	table string
	cols  int
	max   int
	head  string
	args  []any
	n     int
	total int64
	sql   map[int]string
}

func newInserter(table string, cols ...string) *inserter {
	return &inserter{table: table, cols: len(cols), max: min(rowsPerInsert, maxParams/len(cols)),
		head: "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ", sql: map[int]string{}}
}

// add queues one row, sending the statement when it is full.
func (in *inserter) add(ctx context.Context, tx *sql.Tx, vals ...any) error {
	in.args = append(in.args, vals...)
	in.n++
	if in.n == in.max {
		return in.flush(ctx, tx)
	}
	return nil
}

// flush sends the queued rows.
func (in *inserter) flush(ctx context.Context, tx *sql.Tx) error {
	if in.n == 0 {
		return nil
	}
	q, ok := in.sql[in.n]
	if !ok {
		row := "(" + strings.Repeat("?, ", in.cols-1) + "?)"
		var b strings.Builder
		b.Grow(len(in.head) + in.n*(len(row)+2))
		b.WriteString(in.head)
		for i := range in.n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(row)
		}
		q = b.String()
		if in.n == in.max {
			in.sql[in.n] = q // the tails vary; only the full size is worth keeping
		}
	}
	if _, err := tx.ExecContext(ctx, q, in.args...); err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", in.n, in.table, err)
	}
	in.total += int64(in.n)
	clear(in.args)
	in.args, in.n = in.args[:0], 0
	return nil
}

// inserters are the tables a dialog has rows in.
type inserters struct {
	flow                            *engine.Flow
	dialogs, keys, timers, contacts *inserter
}

func newInserters(f *engine.Flow) *inserters {
	return &inserters{
		flow: f,
		dialogs: newInserter("dialogs", "id", "flow", "flow_hash", "state", "status", "vars", "channel", "contact_id", "phone",
			"created_at", "updated_at", "last_event_id", "revision", "handoff_until", "entered_at"),
		keys:     newInserter("dialog_keys", "key", "dialog_id", "active", "created_at"),
		timers:   newInserter("timers", "dialog_id", "state", "name", "due_at", "status", "created_at"),
		contacts: newInserter("contacts", "channel", "contact_id", "last_inbound_at"),
	}
}

// rows is the number of rows written so far.
func (ins *inserters) rows() int64 {
	return ins.dialogs.total + ins.keys.total + ins.timers.total + ins.contacts.total
}

// write queues the rows of ds, table by table, sending the statements that fill
// up. The dialogs go first, and ds holds whole statements of them (but for the
// last chunk): the foreign keys of the other tables are checked at the end of each
// statement, so their rows must not be sent before their dialog's.
func (ins *inserters) write(ctx context.Context, tx *sql.Tx, ds []seeded) error {
	f := ins.flow
	for i := range ds {
		d := &ds[i]
		p := d.state
		if err := ins.dialogs.add(ctx, tx, d.id, f.Name, f.Hash, p.name, string(p.status), d.vars, "waba", d.waID, d.waID,
			d.created, d.updated, 0, p.revision, p.handoff, d.entered); err != nil {
			return err
		}
	}
	if err := ins.dialogs.flush(ctx, tx); err != nil { // a no-op but for the last chunk
		return err
	}
	// The keys as the processor binds them: the first message's waba: and phone:
	// keys, then the issue's; an ended dialog has released them all.
	for i := range ds {
		d := &ds[i]
		live := !d.state.status.Ended()
		if err := ins.keys.add(ctx, tx, event.WABAKey(benchPhoneNumberID, d.waID), d.id, live, d.created); err != nil {
			return err
		}
		if err := ins.keys.add(ctx, tx, event.PhoneKey(d.waID), d.id, live, d.created); err != nil {
			return err
		}
		if d.issue != "" {
			if err := ins.keys.add(ctx, tx, event.OkdeskIssueKey(d.issue), d.id, live, d.created); err != nil {
				return err
			}
		}
	}
	for i := range ds {
		d := &ds[i]
		for _, t := range d.state.timers {
			if err := ins.timers.add(ctx, tx, d.id, d.state.name, t.Name, d.entered.Add(t.After), string(store.TimerPending), d.entered); err != nil {
				return err
			}
		}
	}
	for i := range ds {
		d := &ds[i]
		if err := ins.contacts.add(ctx, tx, "waba", d.waID, d.updated); err != nil {
			return err
		}
	}
	return nil
}

// flush sends every queued row, parents first.
func (ins *inserters) flush(ctx context.Context, tx *sql.Tx) error {
	for _, in := range []*inserter{ins.dialogs, ins.keys, ins.timers, ins.contacts} {
		if err := in.flush(ctx, tx); err != nil {
			return err
		}
	}
	return nil
}

// benchPhoneNumberID is the business number the load generator's messages arrive
// at (bench/loadgen, and WABA_PHONE_NUMBER_ID in bench/run.sh).
const benchPhoneNumberID = "498761234560011"
