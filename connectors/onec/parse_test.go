package onec

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

// TestParseGolden parses every body under testdata/payloads and compares the
// outcome, the events or the error text, with testdata/golden/<name>.json.
func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "payloads", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) < 15 {
		t.Fatalf("found %d payloads, want at least 15", len(inputs))
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var outcome any
			events, err := Parse(body)
			if err != nil {
				outcome = map[string]string{"error": err.Error()}
			} else {
				outcome = events
			}
			got, err := json.MarshalIndent(outcome, "", "  ")
			if err != nil {
				t.Fatalf("marshal outcome: %v", err)
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
				t.Errorf("outcome differs from %s (run with -update after checking):\n got: %s\nwant: %s", golden, got, want)
			}
		})
	}
}

func parsePayload(t *testing.T, name string) event.Event {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("testdata", "payloads", name+".json"))
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

// TestParseFields pins the contract fields independently of the golden files.
func TestParseFields(t *testing.T) {
	cases := []struct {
		file   string
		typ    string
		dedupe string
		at     string // RFC 3339 in UTC, "" for zero
		keys   []string
		phone  string
		data   map[string]any
	}{
		{
			file: "payment_paid", typ: "onec.payment", dedupe: "onec:7f3c2a10-5b7e-11ef-9c3a-00155d012a0b:3", at: "2026-11-29T12:42:00Z",
			keys:  []string{"onec:invoice:7f3c2a10-5b7e-11ef-9c3a-00155d012a0b", "okdesk:issue:1542", "phone:79161234567"},
			phone: "79161234567",
			data: map[string]any{"status": "paid", "invoice_id": "7f3c2a10-5b7e-11ef-9c3a-00155d012a0b", "invoice_number": "00БП-000412",
				"okdesk_issue_id": "1542", "phone": "79161234567", "phone_raw": "+7 916 123-45-67", "amount": 18500.0, "currency": "RUB"},
		},
		{
			file: "payment_partially_paid", typ: "onec.payment", dedupe: "onec:7f3c2a10-5b7e-11ef-9c3a-00155d012a0b:2", at: "2026-11-28T07:05:00Z",
			keys:  []string{"onec:invoice:7f3c2a10-5b7e-11ef-9c3a-00155d012a0b", "okdesk:issue:1542", "phone:79161234567"},
			phone: "79161234567",
			data:  map[string]any{"status": "partially_paid", "amount": 5000.0},
		},
		{
			file: "payment_unpaid", typ: "onec.payment", dedupe: "onec:inv-413:unpaid",
			keys: []string{"onec:invoice:8a1d0c22-5b7e-11ef-9c3a-00155d012a0b", "okdesk:issue:1543"},
			data: map[string]any{"status": "unpaid", "okdesk_issue_id": "1543", "phone": "", "amount": 0.0},
		},
		{
			file: "payment_cancelled", typ: "onec.payment", dedupe: "onec:inv-414:cancelled",
			keys:  []string{"onec:invoice:9b2e1d33-5b7e-11ef-9c3a-00155d012a0b", "phone:79035551234"},
			phone: "79035551234",
			data:  map[string]any{"status": "cancelled", "amount": 12000.5, "okdesk_issue_id": "", "reason": "Счёт отозван"},
		},
		{
			// Numbers where strings are usual: ids rendered exactly, without exponent or fraction.
			file: "payment_issue_id_forms", typ: "onec.payment", dedupe: "onec:1000000000000000001",
			keys:  []string{"onec:invoice:20251", "okdesk:issue:1542", "phone:79161234567"},
			phone: "79161234567",
			data:  map[string]any{"invoice_id": "20251", "invoice_number": "412", "okdesk_issue_id": "1542", "amount": 1500.0},
		},
		{
			file: "payment_minimal", typ: "onec.payment", dedupe: "onec:evt-1",
			data: map[string]any{"invoice_id": "", "invoice_number": "", "okdesk_issue_id": "", "phone": ""},
		},
		{
			// 1C's zone-less local time is not RFC 3339: no time; unusable phone: no key.
			file: "payment_local_time", typ: "onec.payment", dedupe: "onec:evt-2",
			keys: []string{"onec:invoice:inv-2"},
			data: map[string]any{"paid_at": "2026-11-29T15:42:00", "phone": "", "phone_raw": "уточнить"},
		},
		{
			file: "invoice_created", typ: "onec.invoice.created", dedupe: "onec:b1c89da7-cb6a-11e6-aede-5404a6b4b8ed:created",
			keys: []string{"onec:invoice:b1c89da7-cb6a-11e6-aede-5404a6b4b8ed", "okdesk:issue:153"},
			data: map[string]any{"status": "Записан", "amount": 15000.0},
		},
		{
			file: "shipment_done", typ: "onec.shipment", dedupe: "onec:ship-77", at: "2026-11-30T09:00:00Z",
			keys: []string{"phone:442079460958"}, phone: "442079460958",
			data: map[string]any{"status": "shipped"},
		},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			ev := parsePayload(t, c.file)
			if ev.Source != "onec" || ev.Type != c.typ || ev.DedupeKey != c.dedupe || ev.Text != "" {
				t.Errorf("source/type/dedupe/text = %q/%q/%q/%q, want onec/%q/%q/\"\"", ev.Source, ev.Type, ev.DedupeKey, ev.Text, c.typ, c.dedupe)
			}
			var wantAt time.Time
			if c.at != "" {
				wantAt, _ = time.Parse(time.RFC3339, c.at)
			}
			if !ev.At.Equal(wantAt) || ev.At.Location() != time.UTC {
				t.Errorf("At = %v, want %v in UTC", ev.At, wantAt)
			}
			if !slices.Equal(ev.Keys, c.keys) {
				t.Errorf("Keys = %q, want %q", ev.Keys, c.keys)
			}
			if ev.Contact != (event.Contact{Phone: c.phone}) {
				t.Errorf("Contact = %+v, want phone %q only", ev.Contact, c.phone)
			}
			for k, want := range c.data {
				if got := ev.Data[k]; got != want {
					t.Errorf("Data[%q] = %#v, want %#v", k, got, want)
				}
			}
		})
	}
	// Unknown fields survive, nested ones too.
	ev := parsePayload(t, "payment_cancelled")
	if m, _ := ev.Data["manager"].(map[string]any); m["inn"] != "7701234567" {
		t.Errorf("unknown nested field lost: %v", ev.Data["manager"])
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name   string
		body   string
		field  string // "" for ErrBadJSON
		reason bool   // FieldError has a reason (invalid rather than missing)
		text   string // substring of Error()
	}{
		{"empty body", ``, "", false, "bad JSON: "},
		{"not JSON", `id=1&event=payment`, "", false, "bad JSON: invalid character"},
		{"trailing comma", `{"id":"1","event":"payment","status":"paid",}`, "", false, "bad JSON"},
		{"array", `[{"id":"1"}]`, "", false, "bad JSON: body is not a JSON object"},
		{"two objects", `{"id":"1","event":"payment","status":"paid"}{}`, "", false, "bad JSON"},
		{"missing id", `{"event":"payment","status":"paid"}`, "id", false, `missing required field "id"`},
		{"null id", `{"id":null,"event":"payment","status":"paid"}`, "id", false, `missing required field "id"`},
		{"blank id", `{"id":" ","event":"payment","status":"paid"}`, "id", false, `missing required field "id"`},
		{"id is an object", `{"id":{},"event":"payment","status":"paid"}`, "id", true, `invalid field "id"`},
		{"fractional id", `{"id":1.5,"event":"payment","status":"paid"}`, "id", true, "not an integer"},
		{"missing event", `{"id":"1","status":"paid"}`, "event", false, `missing required field "event"`},
		{"event is a number", `{"id":"1","event":5,"status":"paid"}`, "event", true, "must be a string"},
		{"event with a space", `{"id":"1","event":"payment done","status":"paid"}`, "event", true, "may contain only"},
		{"event too long", `{"id":"1","event":"` + strings.Repeat("e", 101) + `","status":"paid"}`, "event", true, "longer than"},
		{"missing status", `{"id":"1","event":"payment"}`, "status", false, `missing required field "status"`},
		{"empty status", `{"id":"1","event":"payment","status":""}`, "status", false, `missing required field "status"`},
		{"unknown payment status", `{"id":"1","event":"payment","status":"Оплачен"}`, "status", true, "paid, partially_paid, unpaid, cancelled"},
		{"status case", `{"id":"1","event":"payment","status":"PAID"}`, "status", true, `"PAID" is not one of`},
		{"invoice is a string", `{"id":"1","event":"payment","status":"paid","invoice":"inv-1"}`, "invoice", true, "must be an object"},
		{"invoice id is a bool", `{"id":"1","event":"payment","status":"paid","invoice":{"id":true}}`, "invoice.id", true, `invalid field "invoice.id"`},
		{"issue id fractional", `{"id":"1","event":"payment","status":"paid","okdesk_issue_id":15.3}`, "okdesk_issue_id", true, "not an integer"},
		{"issue id negative", `{"id":"1","event":"payment","status":"paid","okdesk_issue_id":-3}`, "okdesk_issue_id", true, "positive"},
		{"issue id zero", `{"id":"1","event":"payment","status":"paid","okdesk_issue_id":0}`, "okdesk_issue_id", true, "positive"},
		{"phone is a list", `{"id":"1","event":"payment","status":"paid","phone":["+7"]}`, "phone", true, `invalid field "phone"`},
		{"amount is a word", `{"id":"1","event":"payment","status":"paid","amount":"много"}`, "amount", true, "not a finite number"},
		{"amount is NaN text", `{"id":"1","event":"payment","status":"paid","amount":"NaN"}`, "amount", true, "not a finite number"},
		{"amount overflows", `{"id":"1","event":"payment","status":"paid","amount":1e999}`, "amount", true, "not a finite number"},
		{"amount is a bool", `{"id":"1","event":"payment","status":"paid","amount":true}`, "amount", true, "must be a number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			events, err := Parse([]byte(c.body))
			if err == nil {
				t.Fatalf("Parse accepted %s: %+v", c.body, events)
			}
			if events != nil {
				t.Errorf("events returned with an error")
			}
			fe, isField := errors.AsType[*FieldError](err)
			switch {
			case c.field == "":
				if !errors.Is(err, ErrBadJSON) || isField {
					t.Errorf("err = %v (%T), want ErrBadJSON", err, err)
				}
			case !isField || errors.Is(err, ErrBadJSON):
				t.Errorf("err = %v (%T), want *FieldError", err, err)
			case fe.Field != c.field || (fe.Reason != "") != c.reason:
				t.Errorf("FieldError = %+v, want field %q with reason %v", fe, c.field, c.reason)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("error %q does not contain %q", err.Error(), c.text)
			}
		})
	}
}

// TestParseFreeStatusForOtherEvents: only payments restrict status.
func TestParseFreeStatusForOtherEvents(t *testing.T) {
	events, err := Parse([]byte(`{"id":"1","event":"act.signed","status":"Подписан обеими сторонами"}`))
	if err != nil || len(events) != 1 || events[0].Type != "onec.act.signed" {
		t.Fatalf("Parse = %+v, %v", events, err)
	}
}

func FuzzParse(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "payloads", "*.json"))
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
	f.Add([]byte(`{"id":1e2,"event":"payment","status":"paid","paid_at":"0000-01-01T00:00:00+01:00","okdesk_issue_id":"x"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Parse(body)
		if err != nil {
			_, isField := errors.AsType[*FieldError](err)
			if isField == errors.Is(err, ErrBadJSON) {
				t.Fatalf("error is neither (or both) ErrBadJSON and *FieldError: %v", err)
			}
			if events != nil {
				t.Fatal("events returned with an error")
			}
			return
		}
		if len(events) != 1 {
			t.Fatalf("%d events, want 1", len(events))
		}
		ev := events[0]
		if ev.Source != "onec" || !strings.HasPrefix(ev.Type, "onec.") || len(ev.Type) == len("onec.") {
			t.Fatalf("bad source/type %q/%q", ev.Source, ev.Type)
		}
		if !strings.HasPrefix(ev.DedupeKey, "onec:") || strings.TrimSpace(ev.DedupeKey[len("onec:"):]) == "" {
			t.Fatalf("bad dedupe key %q", ev.DedupeKey)
		}
		if ev.Type == "onec.payment" && !slices.Contains(PaymentStatuses(), ev.Data["status"].(string)) {
			t.Fatalf("payment with status %v accepted", ev.Data["status"])
		}
		for i, k := range ev.Keys {
			if k == "" || slices.Contains(ev.Keys[:i], k) {
				t.Fatalf("empty or duplicate key in %q", ev.Keys)
			}
		}
		if (ev.Contact.Phone != "") != slices.Contains(ev.Keys, "phone:"+ev.Contact.Phone) {
			t.Fatalf("phone %q and keys %q disagree", ev.Contact.Phone, ev.Keys)
		}
		for _, k := range []string{"invoice_id", "invoice_number", "okdesk_issue_id", "phone"} {
			if _, ok := ev.Data[k].(string); !ok {
				t.Fatalf("Data[%q] = %#v, want a string", k, ev.Data[k])
			}
		}
		if _, err := json.Marshal(ev); err != nil {
			t.Fatalf("event does not encode: %v", err)
		}
	})
}

// TestParsePhoneNormalizedOnce: a number given with "+" is not re-read as a bare
// Russian mobile number when the key is built (found by FuzzParse).
func TestParsePhoneNormalizedOnce(t *testing.T) {
	events, err := Parse([]byte(`{"id":"1","event":"payment","status":"paid","phone":"+9001234567"}`))
	if err != nil {
		t.Fatal(err)
	}
	ev := events[0]
	if ev.Contact.Phone != "9001234567" || !slices.Equal(ev.Keys, []string{"phone:9001234567"}) || ev.Data["phone"] != "9001234567" {
		t.Errorf("phone = %q, keys %q, data %v; want 9001234567 throughout", ev.Contact.Phone, ev.Keys, ev.Data["phone"])
	}
}
