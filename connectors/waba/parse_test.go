package waba

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
)

var update = flag.Bool("update", false, "rewrite golden files")

// bodies returns every webhook body under testdata by name (file name without .json):
// Meta's wire-format fixtures and bodies of our own for the remaining kinds.
func bodies(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/fixtures/*.json")
	if err != nil {
		t.Fatal(err)
	}
	own, err := filepath.Glob("testdata/bodies/*.json")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range append(paths, own...) {
		name := strings.TrimSuffix(filepath.Base(p), ".json")
		if _, dup := out[name]; dup {
			t.Fatalf("two bodies named %s", name)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = b
	}
	if len(out) < 30 {
		t.Fatalf("only %d bodies found", len(out))
	}
	return out
}

func TestParseGolden(t *testing.T) {
	for name, body := range bodies(t) {
		t.Run(name, func(t *testing.T) {
			events, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, err := json.MarshalIndent(events, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("events differ from %s (run with -update after checking):\n%s", path, got)
			}
		})
	}
}

// summary is what a flow mostly looks at; the golden files hold the rest.
type summary struct {
	Type, Kind, Text, ReplyID, Dedupe, Contact, Name string
	Keys                                             []string
}

func summarize(ev event.Event) summary {
	return summary{
		Type: ev.Type, Kind: str(ev.Data["kind"]), Text: ev.Text, ReplyID: str(ev.Data["reply_id"]),
		Dedupe: ev.DedupeKey, Contact: ev.Contact.ID, Name: ev.Contact.Name, Keys: ev.Keys,
	}
}

func TestParseKinds(t *testing.T) {
	anna := []string{"waba:498761234560011:79161234567", "phone:79161234567"}
	wamid := func(n string) string {
		return "waba:wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRUIw0000000000000000000" + n + "AA=="
	}
	msg := func(kind, text, replyID, n string) summary {
		return summary{Type: "waba.message", Kind: kind, Text: text, ReplyID: replyID, Dedupe: wamid(n),
			Contact: "79161234567", Name: "Анна Смирнова", Keys: anna}
	}
	status := func(n, st string) summary {
		return summary{Type: "waba.status", Dedupe: wamid(n) + ":" + st, Contact: "79161234567", Keys: anna}
	}
	cases := map[string][]summary{
		"text":                     {msg("text", "Здравствуйте! Не работает кондиционер в офисе 😟", "", "00001")},
		"interactive_button_reply": {msg("button_reply", "Да, верно", "confirm_yes", "00002")},
		"interactive_list_reply":   {msg("list_reply", "Завтра утром", "slot_tomorrow_am", "00003")},
		"template_button":          {msg("template_button", "Оплачу позже", "PAY_LATER", "00004")},
		"image":                    {msg("image", "Вот фото ошибки на табло", "", "00005")},
		"location":                 {msg("location", "БЦ Север, Москва, ул. Тверская, 1", "", "00006")},
		"text_reply":               {msg("text", "Да, в 15:00 удобно", "", "00010")},
		"document":                 {msg("document", "Акт выполненных работ", "", "00011")},
		"audio":                    {msg("audio", "", "", "00012")},
		"voice":                    {msg("voice", "", "", "00013")},
		"video":                    {msg("video", "Шумит при включении", "", "00014")},
		"sticker":                  {msg("sticker", "", "", "00015")},
		"contacts":                 {msg("contacts", "Пётр Иванов, Ольга", "", "00016")},
		"reaction":                 {msg("reaction", "👍", "", "00017")},
		"unsupported":              {msg("unsupported", "", "", "00018")},
		"order":                    {msg("order", "Фильтр и монтаж", "", "00019")},
		"interactive_flow_reply":   {msg("other", "", "", "00021")},
		"system": {{Type: "waba.message", Kind: "system", Text: "User A changed from 79161234567 to 79169999999",
			Dedupe: wamid("00020"), Contact: "79161234567", Keys: anna}},
		"status_sent":                 {status("00904", "sent")},
		"status_delivered":            {status("00900", "delivered")},
		"status_read":                 {status("00904", "read")},
		"status_failed":               {status("00903", "failed")},
		"status_failed_undeliverable": {status("00905", "failed")},
		"empty":                       {},
		"empty_entry":                 {},
		"unknown_field":               {},
	}
	all := bodies(t)
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			events, err := Parse(all[name])
			if err != nil {
				t.Fatal(err)
			}
			got := []summary{}
			for _, ev := range events {
				got = append(got, summarize(ev))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseData(t *testing.T) {
	all := bodies(t)
	first := func(name string) event.Event {
		t.Helper()
		events, err := Parse(all[name])
		if err != nil || len(events) == 0 {
			t.Fatalf("Parse(%s) = %d events, %v", name, len(events), err)
		}
		return events[0]
	}
	cases := []struct {
		body string
		want map[string]any // normalized Data fields; nil means "must be absent"
	}{
		{"image", map[string]any{"media_id": "1187365912948271", "mime_type": "image/jpeg",
			"caption": "Вот фото ошибки на табло", "filename": nil, "context_id": nil,
			"phone_number_id": "498761234560011", "display_phone_number": "74951234567"}},
		{"document", map[string]any{"media_id": "1234567890987654321", "filename": "akt-1542.pdf",
			"mime_type": "application/pdf", "context_id": nil}},
		{"voice", map[string]any{"media_id": "3234567890987654321", "mime_type": "audio/ogg; codecs=opus"}},
		{"interactive_button_reply", map[string]any{"reply_title": "Да, верно",
			"context_id": "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRUIw000000000000000000000900AA=="}},
		{"interactive_list_reply", map[string]any{"reply_description": "09:00–12:00"}},
		{"template_button", map[string]any{"reply_title": "Оплачу позже", "reply_id": "PAY_LATER"}},
		{"text", map[string]any{"reply_id": nil, "errors": nil, "error_code": nil, "type": "text", "from": "79161234567"}},
		{"unsupported", map[string]any{"error_code": 131051.0, "error_title": "Message type unknown",
			"error_details": "Message type is currently not supported."}},
		{"status_failed", map[string]any{"status": "failed", "error_code": 131047.0, "error_title": "Re-engagement message",
			"message_id":   "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzRUIw000000000000000000000903AA==",
			"recipient_id": "79161234567", "phone_number_id": "498761234560011"}},
		{"status_delivered", map[string]any{"status": "delivered", "error_code": nil}},
		{"value_errors_only", map[string]any{"error_code": 131000.0, "error_title": "Something went wrong",
			"waba_id": "310452285489102"}},
	}
	for _, c := range cases {
		ev := first(c.body)
		for k, want := range c.want {
			got, ok := ev.Data[k]
			if want == nil {
				if ok {
					t.Errorf("%s: Data[%q] = %v, want absent", c.body, k, got)
				}
				continue
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: Data[%q] = %#v, want %#v", c.body, k, got, want)
			}
		}
	}
	if ev := first("text"); !ev.At.Equal(time.Unix(1764400000, 0)) || ev.ID != "" || ev.Source != "waba" {
		t.Errorf("text: At %v, ID %q, Source %q", ev.At, ev.ID, ev.Source)
	}
	if ev := first("status_failed"); !ev.At.Equal(time.Unix(1764490000, 0)) {
		t.Errorf("status At = %v", ev.At)
	}
}

func TestParseBatch(t *testing.T) {
	events, err := Parse(bodies(t)["batch_mixed"])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range events {
		got = append(got, ev.Type+" "+str(ev.Data["kind"])+str(ev.Data["status"])+" "+ev.Contact.ID+" "+
			str(ev.Data["phone_number_id"])+" "+strings.Join(ev.Keys, ","))
	}
	want := []string{
		"waba.message text 79161234567 498761234560011 waba:498761234560011:79161234567,phone:79161234567",
		"waba.message button_reply 79257654321 498761234560011 waba:498761234560011:79257654321,phone:79257654321",
		"waba.status sent 79161234567 498761234560011 waba:498761234560011:79161234567,phone:79161234567",
		"waba.status delivered 79161234567 498761234560011 waba:498761234560011:79161234567,phone:79161234567",
		"waba.status failed 79161234567 498761234560011 waba:498761234560011:79161234567,phone:79161234567",
		// A Vietnamese wa_id (84…, 11 digits) must not be taken for a Russian 8-prefixed number.
		"waba.message location 84912345678 598761234560022 waba:598761234560022:84912345678,phone:84912345678",
		"waba.error  84912345678 598761234560022 waba:598761234560022:84912345678,phone:84912345678",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if events[1].Contact.Name != "Пётр Иванов" {
		t.Errorf("second sender's name = %q, want the name matched by wa_id", events[1].Contact.Name)
	}
}

func TestParseValueErrorKeys(t *testing.T) {
	body := bodies(t)["value_errors"]
	key := func(b []byte) string {
		t.Helper()
		events, err := Parse(b)
		if err != nil || len(events) != 2 || events[1].Type != TypeError {
			t.Fatalf("Parse = %+v, %v; want a message and an error", events, err)
		}
		return events[1].DedupeKey
	}
	k := key(body)
	if !strings.HasPrefix(k, "waba:error:") || k != key(body) {
		t.Fatalf("key %q is not stable", k)
	}
	// Whitespace and key order of a re-serialized retry do not matter.
	var v any
	_ = json.Unmarshal(body, &v)
	indented, _ := json.MarshalIndent(v, "", "\t")
	if key(indented) != k {
		t.Error("re-serialized body changed the key")
	}
	// The same error about another message is another event.
	later := bytes.Replace(body, []byte(`"timestamp":"1764401120"`), []byte(`"timestamp":"1764401999"`), 1)
	if bytes.Equal(later, body) || key(later) == k {
		t.Error("error about a later message got the same key")
	}
	events, _ := Parse(bodies(t)["value_errors_only"])
	if len(events) != 2 || events[0].DedupeKey == events[1].DedupeKey {
		t.Errorf("two different errors: %+v", events)
	}
}

func TestParseOddShapes(t *testing.T) {
	events, err := Parse(bodies(t)["odd_shapes"])
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3: %+v", len(events), events)
	}
	noID, test, bsuid := events[0], events[1], events[2]
	if !strings.HasPrefix(noID.DedupeKey, "waba:message:") || noID.Contact.ID != "79161234567" ||
		noID.Text != "без id" || noID.At.Unix() != 1764402200 || noID.Data["phone_number_id"] != "498761234560011" {
		t.Errorf("message without id: %+v", noID)
	}
	if test.DedupeKey != "waba:ABGGFlA5Fpa" || len(test.Keys) != 0 || test.Data["kind"] != KindOther || !test.At.IsZero() {
		t.Errorf("dashboard test message: %+v", test)
	}
	if !strings.HasPrefix(bsuid.DedupeKey, "waba:status:") || bsuid.Contact.Phone != "" ||
		!reflect.DeepEqual(bsuid.Keys, []string{"waba:498761234560011:US.13491208655302741918"}) {
		t.Errorf("status for a business-scoped user id: %+v", bsuid)
	}
}

func TestParseInvalidJSON(t *testing.T) {
	for _, b := range []string{"", "{", "nul", `{"entry":[}`, "\xff", `{"a":1}x`} {
		if events, err := Parse([]byte(b)); err == nil {
			t.Errorf("Parse(%q) = %v, nil; want an error", b, events)
		}
	}
	for _, b := range []string{"null", "[]", "1", `"x"`, `{"entry":{}}`, `{"entry":[{"changes":[{"value":null}]}]}`} {
		if events, err := Parse([]byte(b)); err != nil || len(events) != 0 {
			t.Errorf("Parse(%q) = %v, %v; want no events and no error", b, events, err)
		}
	}
}

func TestStatusRank(t *testing.T) {
	order := []string{"", "sent", "delivered", "read", "failed"}
	for i := 1; i < len(order); i++ {
		if StatusRank(order[i-1]) >= StatusRank(order[i]) {
			t.Errorf("StatusRank(%q) >= StatusRank(%q)", order[i-1], order[i])
		}
	}
	if StatusRank("deleted") != 0 || StatusRank("READ") != 0 {
		t.Error("unknown statuses must rank 0")
	}
}

func FuzzParse(f *testing.F) {
	for _, b := range bodies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := Parse(body)
		if err != nil {
			if json.Valid(body) {
				t.Fatalf("valid JSON rejected: %v", err)
			}
			return
		}
		for _, ev := range events {
			if ev.Type == "" || ev.Source != event.SourceWABA || ev.DedupeKey == "" || ev.ID != "" || ev.Data == nil {
				t.Fatalf("bad event %+v", ev)
			}
			if ev.Type == event.TypeWABAMessage && ev.Data["kind"] == "" {
				t.Fatalf("message without kind: %+v", ev)
			}
		}
		// Normalization is deterministic, so a retried delivery dedupes.
		first, err := json.Marshal(events)
		if err != nil {
			t.Fatalf("events do not encode: %v", err)
		}
		again, _ := Parse(body)
		second, _ := json.Marshal(again)
		if !bytes.Equal(first, second) {
			t.Fatalf("Parse is not deterministic:\n%s\n%s", first, second)
		}
	})
}
