package telegram

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestParseGolden parses every body under testdata/updates and compares the events
// with testdata/golden/<name>.json.
func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "updates", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 20 {
		t.Fatalf("found %d update bodies, want at least 20", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			events, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if events == nil {
				events = []event.Event{}
			}
			got, err := json.MarshalIndent(events, "", "  ")
			if err != nil {
				t.Fatalf("marshal events: %v", err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("events differ from %s (run with -update after checking):\n got: %s\nwant: %s", golden, got, want)
			}
		})
	}
}

func parseFile(t *testing.T, name string) event.Event {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "updates", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	events, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	if len(events) != 1 {
		t.Fatalf("Parse(%s) gave %d events, want 1", name, len(events))
	}
	return events[0]
}

// TestParseFields pins the contract fields independently of the golden files, so a
// careless -update cannot bless a regression in them.
func TestParseFields(t *testing.T) {
	cases := []struct {
		file    string
		typ     string
		dedupe  string
		at      int64 // unix seconds, 0 for a zero time
		keys    []string
		contact event.Contact
		text    string
		data    map[string]any
	}{
		{
			file: "message", typ: "telegram.message", dedupe: "telegram:804112233", at: 1764400000,
			keys:    []string{"telegram:512345678"},
			contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			text:    "Здравствуйте, нужна помощь",
			data:    map[string]any{"kind": "text", "chat_id": "512345678", "message_id": "1201", "update_id": "804112233", "edited": false},
		},
		{
			file: "callback_query", typ: "telegram.callback", dedupe: "telegram:804112234", at: 1764400010,
			keys:    []string{"telegram:512345678"},
			contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			text:    "addr_ok",
			data: map[string]any{"kind": "callback", "chat_id": "512345678", "message_id": "1202", "update_id": "804112234",
				"callback_id": "2201917623456789012", "data": "addr_ok", "chat_instance": "-3412345678901234567"},
		},
		{
			file: "edited_message", typ: "telegram.message", dedupe: "telegram:10000", at: 1441646600,
			keys:    []string{"telegram:1111111"},
			contact: event.Contact{Channel: "telegram", ID: "1111111", Name: "Test Firstname Test Lastname"},
			text:    "Edited text",
			data:    map[string]any{"kind": "text", "edited": true, "message_id": "1365"},
		},
		{
			file: "photo_caption", typ: "telegram.message", dedupe: "telegram:804112241", at: 1764400100,
			keys:    []string{"telegram:512345678"},
			contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна Петрова"},
			text:    "Вот фото поломки",
			data:    map[string]any{"kind": "photo"},
		},
		{file: "document", typ: "telegram.message", dedupe: "telegram:10000", at: 1441645532,
			keys: []string{"telegram:1111111"}, contact: event.Contact{Channel: "telegram", ID: "1111111", Name: "Test Firstname Test Lastname"},
			data: map[string]any{"kind": "document"}},
		{file: "voice", typ: "telegram.message", dedupe: "telegram:804112242", at: 1764400110,
			keys: []string{"telegram:512345678"}, contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			data: map[string]any{"kind": "voice"}},
		{file: "audio", typ: "telegram.message", dedupe: "telegram:804112243", at: 1764400120,
			keys: []string{"telegram:512345678"}, contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			data: map[string]any{"kind": "audio"}},
		{file: "video", typ: "telegram.message", dedupe: "telegram:804112244", at: 1764400130,
			keys: []string{"telegram:512345678"}, contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			text: "Течёт здесь", data: map[string]any{"kind": "video"}},
		{file: "sticker", typ: "telegram.message", dedupe: "telegram:804112245", at: 1764400140,
			keys: []string{"telegram:512345678"}, contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			data: map[string]any{"kind": "sticker"}},
		{file: "location", typ: "telegram.message", dedupe: "telegram:804112246", at: 1764400150,
			keys: []string{"telegram:512345678"}, contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			data: map[string]any{"kind": "location"}},
		{file: "video_note", typ: "telegram.message", dedupe: "telegram:804112255", at: 1764400230,
			keys: []string{"telegram:512345678"}, contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			data: map[string]any{"kind": "other"}},
		{
			file: "contact_own", typ: "telegram.message", dedupe: "telegram:804112247", at: 1764400160,
			keys:    []string{"telegram:512345678", "phone:79161234567"},
			contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна Петрова", Phone: "79161234567"},
			data:    map[string]any{"kind": "contact"},
		},
		{
			// "+9…" keeps its ten digits: the key must not be normalized twice into "79…".
			file: "contact_plus_nine", typ: "telegram.message", dedupe: "telegram:804112257", at: 1764400240,
			keys:    []string{"telegram:512345678", "phone:9001234567"},
			contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна", Phone: "9001234567"},
			data:    map[string]any{"kind": "contact"},
		},
		{
			// A third party's card: its number must not be bound to the sender's dialog.
			file: "contact_other", typ: "telegram.message", dedupe: "telegram:804112248", at: 1764400170,
			keys:    []string{"telegram:512345678"},
			contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			data:    map[string]any{"kind": "contact"},
		},
		{
			file: "contact_card", typ: "telegram.message", dedupe: "telegram:804112249", at: 1764400180,
			keys:    []string{"telegram:512345678", "phone:79161234567"},
			contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна", Phone: "79161234567"},
			data:    map[string]any{"kind": "contact"},
		},
		{
			file: "supergroup", typ: "telegram.message", dedupe: "telegram:804112250", at: 1764400190,
			keys:    []string{"telegram:-1001987654321"},
			contact: event.Contact{Channel: "telegram", ID: "-1001987654321", Name: "Анна Петрова"},
			text:    "В подъезде нет света",
			data:    map[string]any{"chat_id": "-1001987654321", "message_id": "77"},
		},
		{
			// Ids past 2^53 would be rounded by a float64 decoder.
			file: "big_ids", typ: "telegram.message", dedupe: "telegram:9007199254740993", at: 1764400200,
			keys:    []string{"telegram:-9007199254740993"},
			contact: event.Contact{Channel: "telegram", ID: "-9007199254740993", Name: "Big"},
			text:    "ids beyond 2^53",
			data:    map[string]any{"chat_id": "-9007199254740993", "message_id": "9007199254740995", "update_id": "9007199254740993"},
		},
		{
			// Inline-mode button: no message, hence no chat, no key, no time.
			file: "callback_inline", typ: "telegram.callback", dedupe: "telegram:10000",
			contact: event.Contact{Name: "Test Firstname Test Lastname"},
			text:    "Data from button callback",
			data:    map[string]any{"kind": "callback", "chat_id": "", "message_id": "", "callback_id": "4382bfdwdsb323b2d9", "inline_message_id": "1234csdbsk4839"},
		},
		{
			// date 0 marks an inaccessible message: the time is unknown, the chat is not.
			file: "callback_inaccessible", typ: "telegram.callback", dedupe: "telegram:804112240",
			keys:    []string{"telegram:512345678"},
			contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна Петрова"},
			text:    "addr_ok",
			data:    map[string]any{"message_id": "1100"},
		},
		{file: "channel_post", typ: "telegram.channel_post", dedupe: "telegram:804112251", at: 1764400210,
			keys: []string{"telegram:-1001111111111"}, contact: event.Contact{Channel: "telegram", ID: "-1001111111111"},
			text: "Плановые работы в субботу", data: map[string]any{"kind": "text", "edited": false}},
		{file: "my_chat_member", typ: "telegram.my_chat_member", dedupe: "telegram:804112252", at: 1764400220,
			keys: []string{"telegram:512345678"}, contact: event.Contact{Channel: "telegram", ID: "512345678", Name: "Анна"},
			data: map[string]any{"kind": "other", "chat_id": "512345678"}},
		{file: "poll_answer", typ: "telegram.poll_answer", dedupe: "telegram:804112253",
			contact: event.Contact{Name: "Анна"}, data: map[string]any{"kind": "other", "poll_id": "5368111111111111111"}},
		{file: "unknown_kind", typ: "telegram.future_update", dedupe: "telegram:804112254",
			data: map[string]any{"kind": "other", "something": "new", "count": float64(3), "update_id": "804112254"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			ev := parseFile(t, c.file)
			if ev.Source != "telegram" || ev.Type != c.typ || ev.DedupeKey != c.dedupe {
				t.Errorf("source/type/dedupe = %q/%q/%q, want telegram/%q/%q", ev.Source, ev.Type, ev.DedupeKey, c.typ, c.dedupe)
			}
			var wantAt time.Time
			if c.at != 0 {
				wantAt = time.Unix(c.at, 0).UTC()
			}
			if !ev.At.Equal(wantAt) {
				t.Errorf("At = %v, want %v", ev.At, wantAt)
			}
			if !slices.Equal(ev.Keys, c.keys) {
				t.Errorf("Keys = %q, want %q", ev.Keys, c.keys)
			}
			if ev.Contact != c.contact {
				t.Errorf("Contact = %+v, want %+v", ev.Contact, c.contact)
			}
			if ev.Text != c.text {
				t.Errorf("Text = %q, want %q", ev.Text, c.text)
			}
			for k, want := range c.data {
				if got := ev.Data[k]; got != want {
					t.Errorf("Data[%q] = %#v, want %#v", k, got, want)
				}
			}
		})
	}
}

func TestParseNoEvent(t *testing.T) {
	events, err := Parse([]byte(`{"update_id":5}`))
	if err != nil || len(events) != 0 {
		t.Fatalf("Parse(update_id only) = %v, %v; want no events and no error", events, err)
	}
	events, err = Parse([]byte(`{"update_id":5,"message":null}`))
	if err != nil || len(events) != 0 {
		t.Fatalf("Parse(null message) = %v, %v; want no events and no error", events, err)
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		body string
		want error
	}{
		{"empty", ``, ErrBadJSON},
		{"garbage", `not json`, ErrBadJSON},
		{"truncated", `{"update_id":1,"message":{`, ErrBadJSON},
		{"array", `[{"update_id":1}]`, ErrBadJSON},
		{"null", `null`, ErrBadJSON},
		{"trailing data", `{"update_id":1} {"update_id":2}`, ErrBadJSON},
		{"no update_id", `{"message":{"text":"hi"}}`, ErrNoUpdateID},
		{"string update_id", `{"update_id":"1","message":{"text":"hi"}}`, ErrNoUpdateID},
		{"fractional update_id", `{"update_id":1.5}`, ErrNoUpdateID},
		{"huge update_id", `{"update_id":99999999999999999999}`, ErrNoUpdateID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			events, err := Parse([]byte(c.body))
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse error = %v, want %v", err, c.want)
			}
			if events != nil {
				t.Errorf("Parse returned events with an error: %v", events)
			}
		})
	}
}

// TestParseOddShapes checks that wrong types inside an update degrade to missing
// fields instead of failing or panicking.
func TestParseOddShapes(t *testing.T) {
	cases := []struct {
		name, body, typ string
		keys            int
	}{
		{"message is a string", `{"update_id":1,"message":"hi"}`, "telegram.message", 0},
		{"chat id is a string", `{"update_id":1,"message":{"chat":{"id":"12"},"text":"x","date":"soon"}}`, "telegram.message", 0},
		{"date far in the future", `{"update_id":1,"message":{"chat":{"id":12},"date":99999999999999}}`, "telegram.message", 1},
		{"callback message is a list", `{"update_id":1,"callback_query":{"id":"a","message":[1]}}`, "telegram.callback", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			events, err := Parse([]byte(c.body))
			if err != nil || len(events) != 1 {
				t.Fatalf("Parse = %v, %v; want one event", events, err)
			}
			ev := events[0]
			if ev.Type != c.typ || len(ev.Keys) != c.keys || !ev.At.IsZero() {
				t.Errorf("event = %+v; want type %q, %d keys, zero time", ev, c.typ, c.keys)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Errorf("event does not encode: %v", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "updates", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		body, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"update_id":1,"message":{"chat":{"id":-1},"contact":{"phone_number":"+1 555 0100","user_id":2},"from":{"id":2}}}`))
	f.Add([]byte(`{"update_id":2,"message":{"chat":{"id":3},"contact":{"phone_number":"+9001234567"}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrBadJSON) && !errors.Is(err, ErrNoUpdateID) {
				t.Fatalf("untyped error: %v", err)
			}
			if events != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		if len(events) > 1 {
			t.Fatalf("%d events from one update", len(events))
		}
		for _, ev := range events {
			if ev.Source != "telegram" || !strings.HasPrefix(ev.Type, "telegram.") || len(ev.Type) == len("telegram.") {
				t.Fatalf("bad source/type %q/%q", ev.Source, ev.Type)
			}
			if !strings.HasPrefix(ev.DedupeKey, "telegram:") || ev.DedupeKey != "telegram:"+ev.Data["update_id"].(string) {
				t.Fatalf("dedupe key %q does not match update_id %v", ev.DedupeKey, ev.Data["update_id"])
			}
			for i, k := range ev.Keys {
				if k == "" || slices.Contains(ev.Keys[:i], k) {
					t.Fatalf("empty or duplicate key in %q", ev.Keys)
				}
			}
			if ev.Contact.ID != "" && !slices.Contains(ev.Keys, "telegram:"+ev.Contact.ID) {
				t.Fatalf("contact %q has no key in %q", ev.Contact.ID, ev.Keys)
			}
			if ev.Contact.ID != "" && ev.Data["chat_id"] != ev.Contact.ID {
				t.Fatalf("Data chat_id %v differs from contact %q", ev.Data["chat_id"], ev.Contact.ID)
			}
			if (ev.Contact.Phone != "") != slices.Contains(ev.Keys, "phone:"+ev.Contact.Phone) {
				t.Fatalf("phone %q and keys %q disagree", ev.Contact.Phone, ev.Keys)
			}
			if _, ok := ev.Data["kind"].(string); !ok {
				t.Fatalf("Data kind missing: %v", ev.Data)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Fatalf("event does not encode: %v", err)
			}
		}
	})
}
