package waba

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"

	"github.com/fixit-exchange/fixit/connectors"
)

func TestParsePhoneNumberIDs(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		bad  bool
	}{
		{"", nil, false},
		{"  ", nil, false},
		{"498761234560011", []string{"498761234560011"}, false},
		{"498761234560011, 598761234560022", []string{"498761234560011", "598761234560022"}, false},
		{"498761234560011,,598761234560022", nil, true},
		{"498761234560011,+7 495 123", nil, true},
		{"1,1", nil, true},
	}
	for _, c := range cases {
		got, err := ParsePhoneNumberIDs(c.in)
		if (err != nil) != c.bad || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParsePhoneNumberIDs(%q) = %v, %v", c.in, got, err)
		}
	}
}

// TestClientSendsFromDialogNumber: with several numbers a message leaves from its
// dialog's business number (Graph's path names it), the first number when the
// dialog has none, and not at all when the dialog's number is not configured.
func TestClientSendsFromDialogNumber(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(sentOK))
	}))
	defer srv.Close()
	c := New(Config{BaseURL: srv.URL + "/v21.0", AccessToken: testToken, PhoneNumberIDs: []string{"111", "222"}, HTTP: srv.Client()})
	for _, n := range []string{"222", "", "111"} {
		req := sendReq(map[string]any{"text": "hi"}, testNow)
		req.Dialog.BusinessNumber = n
		res, err := c.Execute(context.Background(), req)
		if err != nil {
			t.Fatalf("from %q: %v", n, err)
		}
		want := n
		if want == "" {
			want = "111"
		}
		if res.Data["from"] != want {
			t.Errorf("from %q: result says from %v", n, res.Data["from"])
		}
	}
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), paths...)
	}
	if want := []string{"/v21.0/222/messages", "/v21.0/111/messages", "/v21.0/111/messages"}; !reflect.DeepEqual(got(), want) {
		t.Errorf("paths %v, want %v", got(), want)
	}
	req := sendReq(map[string]any{"text": "hi"}, testNow)
	req.Dialog.BusinessNumber = "333"
	_, err := c.Execute(context.Background(), req)
	var ce *connectors.Error
	if !errors.As(err, &ce) || ce.Code != CodeNumberNotConfigured || ce.Retryable {
		t.Errorf("unconfigured number: %v", err)
	}
	if len(got()) != 3 {
		t.Errorf("a message for an unconfigured number was sent")
	}
}
