package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/dialog"
	"github.com/fixit-exchange/fixit/engine/replay"
	"github.com/fixit-exchange/fixit/engine/store"
)

const replayUsage = `usage: fixit replay [--db DSN | --from FILE.jsonl] [--flows DIR] [selection] [--format text|json] [--allow-diverged]
       fixit replay export [--db DSN] [selection] > FILE.jsonl
       fixit replay scenario [--db DSN | --from FILE.jsonl] [--keep-pii] DIALOG_ID > NAME_test.yaml
selection: --flow NAME, --since RFC3339, --status STATUS, --dialog ID (repeatable, or ID,ID), --limit N`

// ids is a repeatable --dialog flag.
type ids []int64

func (d *ids) String() string { return fmt.Sprint([]int64(*d)) }
func (d *ids) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("%q is not a dialog id", p)
		}
		*d = append(*d, id)
	}
	return nil
}

// runReplay is `fixit replay`: it re-runs recorded conversations against a
// candidate flow set and says, per dialog, whether it would go the same way.
func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("replay", stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, replayUsage) }
	db := fs.String("db", envOr("FIXIT_DB", "data/fixit.db"), "the database the conversations were recorded in (read only)")
	from := fs.String("from", "", "a JSON Lines export (fixit replay export) instead of the database")
	flows := fs.String("flows", envOr("FIXIT_FLOWS", "flows.d"), "the candidate flow folder")
	flow := fs.String("flow", "", "only dialogs of this flow")
	since := fs.String("since", "", "only dialogs started at or after this time (RFC 3339)")
	status := fs.String("status", "", "only dialogs of this status: "+strings.Join(statusNames(), ", "))
	limit := fs.Int("limit", 0, "at most this many dialogs, the newest (0: all)")
	format := fs.String("format", "text", "output: text or json")
	allow := fs.Bool("allow-diverged", false, "exit 0 even when dialogs diverged or were stranded")
	keep := fs.Bool("keep-pii", false, "scenario: keep phones, names and free text as recorded")
	var dialogs ids
	fs.Var(&dialogs, "dialog", "only this dialog (repeatable, or a comma-separated list)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	sub := ""
	if len(pos) > 0 && (pos[0] == "export" || pos[0] == "scenario") {
		sub, pos = pos[0], pos[1:]
	}
	bad := func(msg string, a ...any) int {
		fmt.Fprintf(stderr, "fixit replay: "+msg+"\n", a...)
		return 2
	}
	// Each subcommand takes its own flags; one it ignores would mislead.
	takes := map[string][]string{
		"":         {"db", "from", "flows", "flow", "since", "status", "limit", "format", "allow-diverged", "dialog"},
		"export":   {"db", "flow", "since", "status", "limit", "dialog"},
		"scenario": {"db", "from", "keep-pii"},
	}[sub]
	var unused []string
	fs.Visit(func(f *flag.Flag) {
		if !slices.Contains(takes, f.Name) {
			unused = append(unused, "--"+f.Name)
		}
	})
	if len(unused) > 0 {
		name := "fixit replay"
		if sub != "" {
			name += " " + sub
		}
		return bad("%s does not take %s\n%s", name, strings.Join(unused, ", "), replayUsage)
	}
	sel := replay.Selection{Flow: *flow, Status: dialog.Status(*status), Dialogs: dialogs, Limit: *limit}
	switch {
	case *status != "" && !sel.Status.Valid():
		return bad("--status %q is not one of %s", *status, strings.Join(statusNames(), ", "))
	case *limit < 0:
		return bad("--limit %d: want a number of dialogs, 0 for all", *limit)
	case *format != "text" && *format != "json":
		return bad("--format %q: want text or json", *format)
	}
	if *since != "" {
		t, err := time.Parse(time.RFC3339, *since)
		if err != nil {
			return bad("--since %q is not an RFC 3339 time (e.g. 2026-11-01T00:00:00+03:00)", *since)
		}
		sel.Since = t
	}
	switch {
	case sub == "scenario" && len(pos) != 1:
		return bad("scenario takes one dialog id\n%s", replayUsage)
	case sub == "scenario":
		id, err := strconv.ParseInt(pos[0], 10, 64)
		if err != nil || id <= 0 {
			return bad("scenario: %q is not a dialog id", pos[0])
		}
		sel = replay.Selection{Dialogs: []int64{id}}
	case len(pos) != 0:
		return bad("unexpected %q\n%s", pos[0], replayUsage)
	}
	ctx := context.Background()
	recs, err := recordings(ctx, *db, *from, sel)
	if err != nil {
		fmt.Fprintf(stderr, "fixit replay: %v\n", err)
		return 1
	}
	if len(recs) == 0 && sub == "" {
		fmt.Fprintln(stderr, "fixit replay: no recorded dialog matches the selection: nothing was replayed")
		return 1
	}
	switch sub {
	case "export":
		if len(recs) == 0 {
			fmt.Fprintln(stderr, "fixit replay export: no recorded dialog matches the selection")
		}
		if err := replay.Export(stdout, recs); err != nil {
			fmt.Fprintf(stderr, "fixit replay export: %v\n", err)
			return 1
		}
		return 0
	case "scenario":
		if len(recs) != 1 {
			fmt.Fprintf(stderr, "fixit replay scenario: no dialog %d recorded\n", sel.Dialogs[0])
			return 1
		}
		out, err := replay.Scenario(recs[0], *keep)
		if err != nil {
			fmt.Fprintf(stderr, "fixit replay scenario: %v\n", err)
			return 1
		}
		fmt.Fprint(stdout, out)
		return 0
	}
	loader, err := offlineLoader()
	if err != nil {
		fmt.Fprintf(stderr, "fixit replay: %v\n", err)
		return 1
	}
	set, diags := loader.Load(*flows)
	if set == nil {
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		fmt.Fprintf(stderr, "fixit replay: the candidate flows in %s do not load\n", *flows)
		return 1
	}
	env := engine.FlowEnv(os.Environ())
	var verdicts []replay.Verdict
	counts := map[string]int{}
	for _, rec := range recs {
		v, err := replay.Run(ctx, rec, set, env)
		if err != nil {
			fmt.Fprintf(stderr, "fixit replay: dialog %d: %v\n", rec.Dialog.ID, err)
			return 1
		}
		verdicts = append(verdicts, v)
		counts[v.Result]++
	}
	switch *format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			Dialogs []replay.Verdict `json:"dialogs"`
			Summary map[string]int   `json:"summary"`
		}{append([]replay.Verdict{}, verdicts...), map[string]int{replay.Same: counts[replay.Same],
			replay.Diverged: counts[replay.Diverged], replay.Stranded: counts[replay.Stranded]}})
	default:
		writeVerdicts(stdout, verdicts, counts)
	}
	if !*allow && counts[replay.Diverged]+counts[replay.Stranded] > 0 {
		return 1
	}
	return 0
}

// recordings reads the selected dialogs from an export or the database.
func recordings(ctx context.Context, dsn, from string, sel replay.Selection) ([]replay.Recording, error) {
	if from != "" {
		f, err := os.Open(from)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		all, err := replay.Import(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", from, err)
		}
		var out []replay.Recording
		for _, r := range all {
			if selected(r, sel) {
				out = append(out, r)
			}
		}
		if sel.Limit > 0 && len(out) > sel.Limit {
			out = out[len(out)-sel.Limit:]
		}
		return out, nil
	}
	st, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler), store.ReadOnly())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", store.Describe(dsn), err)
	}
	defer st.Close()
	return replay.Load(ctx, st, sel)
}

func selected(r replay.Recording, sel replay.Selection) bool {
	d := r.Dialog
	switch {
	case sel.Flow != "" && d.Flow != sel.Flow, sel.Status != "" && d.Status != sel.Status, !sel.Since.IsZero() && d.CreatedAt.Before(sel.Since):
		return false
	case len(sel.Dialogs) > 0:
		for _, id := range sel.Dialogs {
			if id == d.ID {
				return true
			}
		}
		return false
	}
	return true
}

// writeVerdicts prints a line per dialog, what diverged, and a summary table.
func writeVerdicts(w io.Writer, vs []replay.Verdict, counts map[string]int) {
	for _, v := range vs {
		fmt.Fprintf(w, "dialog %d (%s): %s", v.DialogID, v.Flow, v.Result)
		if v.Step > 0 {
			fmt.Fprintf(w, " at step %d", v.Step)
		}
		if v.Reason != "" {
			fmt.Fprintf(w, ": %s", v.Reason)
		}
		fmt.Fprintln(w)
		if v.Recorded != nil {
			fmt.Fprintf(w, "    recorded:  %s\n", v.Recorded)
		}
		if v.Candidate != nil {
			fmt.Fprintf(w, "    candidate: %s\n", v.Candidate)
		}
	}
	fmt.Fprintf(w, "\n%-10s %6s\n", "result", "dialogs")
	for _, r := range []string{replay.Same, replay.Diverged, replay.Stranded} {
		fmt.Fprintf(w, "%-10s %6d\n", r, counts[r])
	}
}

func statusNames() []string {
	out := make([]string, len(dialog.Statuses))
	for i, s := range dialog.Statuses {
		out[i] = string(s)
	}
	return out
}
