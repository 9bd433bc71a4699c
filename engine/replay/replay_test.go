package replay

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fixit-exchange/fixit/engine/event"
)

func TestMaskText(t *testing.T) {
	m := masker{names: map[string]string{}, phones: map[string]string{}}
	tests := []struct{ in, want string }{
		{"1", "1"},
		{"да", "да"},
		{"Анна Смирнова, 8 916 123-45-67", "Хххх Хххххххх, 0 000 000-00-00"},
		{"Boiler E5 off!", "Xxxxxx X0 xxx!"},
	}
	for _, tc := range tests {
		if got := m.text(tc.in); got != tc.want {
			t.Errorf("text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if a, b := m.phone("79161234567"), m.phone("79160000002"); a != "70000000001" || b != "70000000002" || m.phone("79161234567") != a {
		t.Errorf("phones %s %s: want stable, distinct, same length", a, b)
	}
	if n := m.name("Анна"); n != "Клиент 1" || m.name("Анна") != n {
		t.Errorf("name %q", n)
	}
	data := m.data(map[string]any{"issue_id": "1542", "contact": map[string]any{"first_name": "Анна", "id": "21"},
		"comment_text": "Позвоните мне", "status": "completed"}).(map[string]any)
	if data["issue_id"] != "1542" || data["status"] != "completed" || data["comment_text"] != "Ххххххххх ххх" ||
		data["contact"].(map[string]any)["first_name"] != "Хххх" || data["contact"].(map[string]any)["id"] != "21" {
		t.Errorf("data masked as %v", data)
	}
}

func TestImportErrors(t *testing.T) {
	if _, err := Import(strings.NewReader("{\"dialog\":{\"id\":1,\"flow\":\"f\"}}\nnot json\n")); err == nil ||
		!strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad line: %v", err)
	}
	if _, err := Import(strings.NewReader(`{"dialog":{"flow":"f"}}`)); err == nil || !strings.Contains(err.Error(), "names no dialog") {
		t.Errorf("a recording without an id: %v", err)
	}
	var b bytes.Buffer
	rec := Recording{Dialog: Dialog{ID: 7, Flow: "f"}, Events: []Event{{Seq: 3, Event: event.Event{Type: "waba.message", Text: "hi"}}}}
	if err := Export(&b, []Recording{rec}); err != nil {
		t.Fatal(err)
	}
	back, err := Import(&b)
	if err != nil || len(back) != 1 || back[0].Dialog.ID != 7 || back[0].Events[0].Event.Text != "hi" {
		t.Errorf("round trip: %+v %v", back, err)
	}
}

// FuzzImport: an export file is outside input; reading it never panics, and what it
// accepts names a dialog.
func FuzzImport(f *testing.F) {
	f.Add([]byte(`{"dialog":{"id":1,"flow":"f"},"events":[{"seq":1,"event":{"type":"waba.message"}}]}`))
	f.Add([]byte("{}\n\n{\"dialog\":{\"id\":2}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := Import(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.Dialog.ID == 0 || r.Dialog.Flow == "" {
				t.Fatalf("accepted a recording without a dialog: %+v", r)
			}
		}
	})
}
