package okdesk

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fixit-exchange/fixit/engine/event"
)

var update = flag.Bool("update", false, "rewrite golden files")

func webhookFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no webhook bodies in testdata/webhooks: %v", err)
	}
	return files
}

// TestParseGolden compares the normalized events of every body in testdata/webhooks with
// testdata/golden (go test -run TestParseGolden -update rewrites them).
func TestParseGolden(t *testing.T) {
	for _, in := range webhookFiles(t) {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := json.MarshalIndent(evs, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("events differ from %s (run with -update to accept):\n%s", golden, got)
			}
		})
	}
}

// TestParseFixtures pins the facts flows depend on, independent of the golden files.
func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file      string
		typ       string
		dedupe    string // exact key, or a prefix when it ends with ':'
		keys      []string
		text      string
		at        string
		data      map[string]any
		contact   event.Contact
		noDataKey []string
	}{
		{
			file:    "new_comment.json",
			typ:     "okdesk.new_comment",
			dedupe:  "okdesk:new_comment:5881",
			keys:    []string{"okdesk:issue:1542"},
			text:    "Инженер будет у вас завтра в 10:00",
			at:      "2026-11-29T07:15:02.118Z",
			contact: event.Contact{Name: "Анна Смирнова"},
			data: map[string]any{"event_type": "new_comment", "issue_id": "1542", "comment_id": "5881",
				"comment_public": true, "comment_text": "Инженер будет у вас завтра в 10:00",
				"author_type": "employee", "contact_id": "21"},
			noDataKey: []string{"new_status", "old_status"},
		},
		{
			file:    "new_ticket.json",
			typ:     "okdesk.new_ticket",
			dedupe:  "okdesk:new_ticket:1543",
			keys:    []string{"okdesk:issue:1543"},
			at:      "2026-11-29T07:15:02.118Z",
			contact: event.Contact{Name: "Анна Смирнова"},
			data:    map[string]any{"event_type": "new_ticket", "issue_id": "1543"},
		},
		{
			file:    "new_ticket_status.json",
			typ:     "okdesk.new_ticket_status",
			dedupe:  "okdesk:new_ticket_status:1542:opened→completed:",
			keys:    []string{"okdesk:issue:1542"},
			at:      "2026-11-29T07:15:02.118Z",
			contact: event.Contact{Name: "Анна Смирнова"},
			data: map[string]any{"new_status": "completed", "old_status": "opened", "comment_id": "5880",
				"comment_text": "Заменили дренажный насос", "comment_public": true},
		},
		{
			file:    "rest_numeric_ids.json",
			typ:     "okdesk.new_comment",
			dedupe:  "okdesk:new_comment:5882",
			keys:    []string{"okdesk:issue:153", "phone:79161234567"},
			text:    "Спасибо!\nЖду мастера «завтра» & не позже 12:00 ч.\nВторой абзац",
			at:      "2026-11-29T09:01:00Z",
			contact: event.Contact{Name: "Николай Ставрогин", Phone: "79161234567"},
			data: map[string]any{"issue_id": "153", "comment_id": "5882", "comment_public": false,
				"author_type": "contact", "author_id": "21", "contact_id": "21"},
		},
		{
			file:    "status_with_phone.json",
			typ:     "okdesk.new_ticket_status",
			dedupe:  "okdesk:new_ticket_status:1542:completed→closed:",
			keys:    []string{"okdesk:issue:1542", "phone:79161234567"},
			at:      "2026-12-01T06:00:00Z",
			contact: event.Contact{Name: "Анна Смирнова", Phone: "79161234567"},
			data:    map[string]any{"new_status": "closed", "old_status": "completed"},
		},
		{
			file:   "unknown_event.json",
			typ:    "okdesk.new_csat_rate",
			dedupe: "okdesk:new_csat_rate:1542:",
			keys:   []string{"okdesk:issue:1542"},
			data:   map[string]any{"event_type": "new_csat_rate", "issue_id": "1542", "author_type": "contact"},
		},
		{
			file:      "missing_issue.json",
			typ:       "okdesk.ticket_deleted",
			dedupe:    "okdesk:ticket_deleted:",
			data:      map[string]any{"event_type": "ticket_deleted"},
			noDataKey: []string{"issue_id", "object_type", "object_id"},
		},
		{
			file:      "new_company.json",
			typ:       "okdesk.new_company",
			dedupe:    "okdesk:new_company:1040:",
			keys:      []string{"okdesk:company:1040"},
			at:        "2026-11-28T05:00:00Z",
			data:      map[string]any{"object_type": "company", "object_id": "1040"},
			noDataKey: []string{"issue_id"},
		},
		{
			file:   "change_equipment.json",
			typ:    "okdesk.change_equipment",
			dedupe: "okdesk:change_equipment:96:",
			keys:   []string{"okdesk:equipment:96"},
			data:   map[string]any{"object_type": "equipment", "object_id": "96"},
		},
		{
			file:   "new_agreement.json",
			typ:    "okdesk.new_agreement",
			dedupe: "okdesk:new_agreement:34:",
			keys:   []string{"okdesk:agreement:34"},
		},
		{
			file:   "change_service_aim.json",
			typ:    "okdesk.change_service_aim",
			dedupe: "okdesk:change_service_aim:43:",
			keys:   []string{"okdesk:service_object:43"},
			data:   map[string]any{"object_type": "service_aim"},
		},
		{
			file:   "unknown_object.json",
			typ:    "okdesk.new_warehouse_item",
			dedupe: "okdesk:new_warehouse_item:7:",
			keys:   []string{"okdesk:warehouse_item:7"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body, err := os.ReadFile(filepath.Join("testdata", "webhooks", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			evs, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Type != tc.typ || ev.Source != event.SourceOkdesk {
				t.Errorf("type, source = %q, %q; want %q, okdesk", ev.Type, ev.Source, tc.typ)
			}
			if strings.HasSuffix(tc.dedupe, ":") {
				rest, ok := strings.CutPrefix(ev.DedupeKey, tc.dedupe)
				if !ok || len(rest) != 16 {
					t.Errorf("dedupe key = %q, want %q + 16 hex digits", ev.DedupeKey, tc.dedupe)
				}
			} else if ev.DedupeKey != tc.dedupe {
				t.Errorf("dedupe key = %q, want %q", ev.DedupeKey, tc.dedupe)
			}
			if strings.Join(ev.Keys, ",") != strings.Join(tc.keys, ",") {
				t.Errorf("keys = %v, want %v", ev.Keys, tc.keys)
			}
			if ev.Text != tc.text {
				t.Errorf("text = %q, want %q", ev.Text, tc.text)
			}
			wantAt := time.Time{}
			if tc.at != "" {
				wantAt, _ = time.Parse(time.RFC3339Nano, tc.at)
			}
			if !ev.At.Equal(wantAt) {
				t.Errorf("at = %v, want %v", ev.At, wantAt)
			}
			if ev.Contact != tc.contact {
				t.Errorf("contact = %+v, want %+v", ev.Contact, tc.contact)
			}
			for k, want := range tc.data {
				if got := ev.Data[k]; got != want {
					t.Errorf("data[%q] = %#v, want %#v", k, got, want)
				}
			}
			for _, k := range tc.noDataKey {
				if v, ok := ev.Data[k]; ok {
					t.Errorf("data[%q] = %#v, want absent", k, v)
				}
			}
			if _, ok := ev.Data["event"].(map[string]any); !ok {
				t.Errorf("data lacks the raw event object")
			}
		})
	}
}

func TestParseNumbersAreFloat64(t *testing.T) {
	evs, err := Parse([]byte(`{"event":{"event_type":"x"},"issue":{"id":153,"child_ids":[93,94]}}`))
	if err != nil {
		t.Fatal(err)
	}
	issue := evs[0].Data["issue"].(map[string]any)
	if got, ok := issue["id"].(float64); !ok || got != 153 {
		t.Errorf("issue.id = %#v, want float64 153", issue["id"])
	}
	if got := issue["child_ids"].([]any)[1]; got != float64(94) {
		t.Errorf("child_ids[1] = %#v, want float64 94", got)
	}
	if evs[0].Data["issue_id"] != "153" {
		t.Errorf("issue_id = %#v, want \"153\"", evs[0].Data["issue_id"])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantField bool // a *FieldError naming event.event_type
	}{
		{"empty", ``, false},
		{"not json", `{"event":`, false},
		{"array", `[{"event":{"event_type":"new_ticket"}}]`, false},
		{"trailing data", `{"event":{"event_type":"new_ticket"}} {}`, false},
		{"number out of range", `{"event":{"event_type":"new_ticket"},"issue":{"id":1e400}}`, false},
		{"no event", `{"issue":{"id":"1"}}`, true},
		{"event is a string", `{"event":"new_ticket","issue":{"id":"1"}}`, true},
		{"no event_type", `{"event":{"author":{}},"issue":{"id":"1"}}`, true},
		{"empty event_type", `{"event":{"event_type":"  "}}`, true},
		{"numeric event_type", `{"event":{"event_type":5}}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Parse([]byte(tc.body))
			if err == nil {
				t.Fatalf("Parse succeeded with %d events, want an error", len(evs))
			}
			var fe *FieldError
			if got := errors.As(err, &fe); got != tc.wantField {
				t.Fatalf("FieldError = %v (%v), want %v", got, err, tc.wantField)
			}
			if tc.wantField && fe.Field != "event.event_type" {
				t.Errorf("field = %q, want event.event_type", fe.Field)
			}
			if !strings.Contains(err.Error(), "okdesk webhook") {
				t.Errorf("error %q does not say what was being parsed", err)
			}
		})
	}
}

// TestDedupeKeyStability: a retried delivery (same content, other formatting or key
// order) keeps its key; any change of content gives another one.
func TestDedupeKeyStability(t *testing.T) {
	key := func(t *testing.T, body []byte) string {
		t.Helper()
		evs, err := Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		return evs[0].DedupeKey
	}
	for _, in := range webhookFiles(t) {
		t.Run(filepath.Base(in), func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, body); err != nil {
				t.Fatal(err)
			}
			if a, b := key(t, body), key(t, compact.Bytes()); a != b {
				t.Errorf("reformatted body changed the key: %q vs %q", a, b)
			}
		})
	}

	base := `{"event":{"event_type":"%s","author":{"id":"116","type":"employee"},"old_status":{"code":"opened"},"new_status":{"code":"completed"}%s},"issue":{"id":"%s","rate":"%s"}}`
	variants := []struct{ typ, extra, id, rate string }{
		{"new_ticket_status", "", "1542", "good"},
		{"new_ticket_status", `,"comment":{"id":"9","content":"x"}`, "1542", "good"},
		{"new_ticket_status", "", "1543", "good"},
		{"new_csat_rate", "", "1542", "good"},
		{"new_csat_rate", "", "1542", "bad"},
		{"new_csat_rate", "", "1543", "good"},
		{"new_files", "", "1542", "good"},
	}
	seen := map[string]int{}
	for i, v := range variants {
		k := key(t, []byte(fmt.Sprintf(base, v.typ, v.extra, v.id, v.rate)))
		if j, dup := seen[k]; dup {
			t.Errorf("variants %d and %d share dedupe key %q", j, i, k)
		}
		seen[k] = i
	}

	// Two deliveries of the same comment id are the same event whatever else changed.
	a := key(t, []byte(`{"event":{"event_type":"new_comment","comment":{"id":"7","content":"a"}},"issue":{"id":"1"}}`))
	b := key(t, []byte(`{"event":{"event_type":"new_comment","comment":{"id":7,"content":"a"}},"issue":{"id":1,"title":"t"}}`))
	if a != b || a != "okdesk:new_comment:7" {
		t.Errorf("comment keys = %q, %q; want both okdesk:new_comment:7", a, b)
	}
}

func FuzzParse(f *testing.F) {
	for _, in := range webhookFiles(f) {
		body, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"event":{"event_type":"new_comment","comment":{"id":1,"content":"<p>a<br>b &amp; <!-- c"}},"issue":{"id":"2","contact":{"phone":"+7 916 123 45 67"}}}`))
	f.Add([]byte(`{"event":{"event_type":"x"},"company":{"id":1.5},"zzz":{"id":"a b"}}`))
	f.Add([]byte(`{"event":{"event_type":"x"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := Parse(body)
		if err != nil {
			if evs != nil {
				t.Fatalf("events %v returned with error %v", evs, err)
			}
			return
		}
		if len(evs) != 1 {
			t.Fatalf("got %d events, want 1", len(evs))
		}
		ev := evs[0]
		typ, _ := ev.Data["event_type"].(string)
		if typ == "" || ev.Type != "okdesk."+typ || ev.Source != event.SourceOkdesk {
			t.Fatalf("type %q, source %q, data.event_type %q", ev.Type, ev.Source, typ)
		}
		if !strings.HasPrefix(ev.DedupeKey, "okdesk:"+typ+":") {
			t.Fatalf("dedupe key %q", ev.DedupeKey)
		}
		for i, k := range ev.Keys {
			if k == "" || strings.ContainsAny(k, " \t\n") {
				t.Fatalf("key %d = %q", i, k)
			}
			for _, o := range ev.Keys[:i] {
				if o == k {
					t.Fatalf("duplicate key %q", k)
				}
			}
		}
		if !utf8.ValidString(ev.Text) || ev.Text != strings.TrimSpace(ev.Text) {
			t.Fatalf("text %q is not trimmed valid UTF-8", ev.Text)
		}
		// E.164 digits: normalizing them again, as "+digits", must not change them.
		if ev.Contact.Phone != "" && event.NormalizePhone("+"+ev.Contact.Phone) != ev.Contact.Phone {
			t.Fatalf("contact phone %q is not normalized", ev.Contact.Phone)
		}
		if ev.Contact.Phone != "" && !slices.Contains(ev.Keys, "phone:"+ev.Contact.Phone) {
			t.Fatalf("keys %v lack the contact phone %q", ev.Keys, ev.Contact.Phone)
		}
		if _, err := json.Marshal(evs); err != nil {
			t.Fatalf("event does not marshal: %v", err)
		}
		again, err := Parse(body)
		if err != nil || again[0].DedupeKey != ev.DedupeKey {
			t.Fatalf("second parse differs: %v, %q vs %q", err, again[0].DedupeKey, ev.DedupeKey)
		}
	})
}
