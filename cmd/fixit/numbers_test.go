package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// The e2e account's two business numbers, and one it does not serve.
const (
	numberA     = "498761234560011"
	numberB     = "598761234560022"
	numberOther = "698761234560033"
)

// waTextTo is a text from the customer 79161234567 to business number number.
func waTextTo(n int, number, text string) []byte {
	return []byte(strings.Replace(string(waText(n, text)), `"phone_number_id":"498761234560011"`,
		`"phone_number_id":"`+number+`"`, 1))
}

// waReceipt is Meta's status webhook about message wamid, sent by number to the
// customer; a failed one carries code.
func waReceipt(number, wamid, status string, code int) []byte {
	errs := ""
	if status == "failed" {
		errs = fmt.Sprintf(`,"errors":[{"code":%d,"title":"Message undeliverable","message":"Message undeliverable","error_data":{"details":"Message Undeliverable."}}]`, code)
	}
	return fmt.Appendf(nil, `{"object":"whatsapp_business_account","entry":[{"id":"310452285489102","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"74951234567","phone_number_id":"%s"},"statuses":[{"id":"%s","status":"%s","timestamp":"%d","recipient_id":"79161234567"%s}]},"field":"messages"}]}]}`,
		number, wamid, status, time.Now().Unix(), errs)
}

// TestServeNumbersAndReceipts runs the real binary with two WhatsApp numbers: one
// customer writing to both has two dialogs, each answered from its number (the fake
// Graph API checks the path's phone-number-id); a message to a number fixit does
// not serve is stored and unrouted, saying why; receipts move the outbox item's
// delivery forward, and a failed one hands the dialog to an operator.
func TestServeNumbersAndReceipts(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) { serveNumbersAndReceipts(t, dsn) })
}

func serveNumbersAndReceipts(t *testing.T, dsn string) {
	apis := newFakeAPIs(t)
	in := startFixit(t, dsn, "../../flows.d",
		"WABA_API_URL="+apis.srv.URL, "WABA_ACCESS_TOKEN=e2e-graph-token", "WABA_PHONE_NUMBER_ID="+numberA+", "+numberB,
		"OKDESK_API_URL="+apis.srv.URL+"/api/v1", "OKDESK_API_TOKEN=e2e-okdesk-token")
	admin := func(path string) []byte {
		t.Helper()
		code, b := in.do("GET", path, nil, "Authorization", "Bearer "+adminToken)
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, b)
		}
		return b
	}
	senders := func() []string {
		apis.mu.Lock()
		defer apis.mu.Unlock()
		return slices.Clone(apis.senders)
	}

	in.postWA(waTextTo(1, numberA, "Здравствуйте"))
	eventually(t, "the greeting from A", func() bool { return len(apis.texts()) >= 1 })
	in.postWA(waTextTo(2, numberB, "Добрый день"))
	eventually(t, "the greeting from B", func() bool { return len(apis.texts()) >= 2 })
	in.postWA(waTextTo(3, numberB, "Пётр"))
	eventually(t, "B's question about the problem", func() bool { return len(apis.texts()) >= 3 })
	if got, want := senders(), []string{numberA, numberB, numberB}; !slices.Equal(got, want) {
		t.Fatalf("messages left from %v, want %v", got, want)
	}
	if tx := apis.texts(); !strings.HasPrefix(tx[2], "Пётр,") {
		t.Errorf("B's dialog answered %q", tx[2])
	}

	var dialogs struct {
		Items []struct {
			ID       int64  `json:"id"`
			State    string `json:"state"`
			Business string `json:"business_number"`
		} `json:"items"`
	}
	if err := json.Unmarshal(admin("/api/v1/dialogs?status=active"), &dialogs); err != nil || len(dialogs.Items) != 2 {
		t.Fatalf("active dialogs: %+v %v", dialogs, err)
	}
	byNumber := map[string]string{}
	for _, d := range dialogs.Items {
		byNumber[d.Business] = d.State
	}
	if byNumber[numberA] != "ask_name" || byNumber[numberB] != "ask_problem" {
		t.Errorf("dialogs by number: %v", byNumber)
	}

	// A number the account does not serve: stored, acknowledged, unrouted with the reason.
	in.postWA(waTextTo(4, numberOther, "Алло"))
	eventually(t, "the unrouted event", func() bool {
		return strings.Contains(string(admin("/api/v1/events?status=unrouted")), "business number "+numberOther+" is not configured")
	})

	// A's dialog goes on to the issue; its number reaches the customer as message 5.
	in.postWA(waTextTo(5, numberA, "Анна"))
	eventually(t, "A's question about the problem", func() bool { return len(apis.texts()) >= 4 })
	in.postWA(waTextTo(6, numberA, "Течёт кондиционер"))
	eventually(t, "the issue number", func() bool {
		tx := apis.texts()
		return len(tx) >= 5 && strings.Contains(tx[4], "№1542")
	})
	if got := senders(); got[3] != numberA || got[4] != numberA {
		t.Fatalf("A's dialog answered from %v", got)
	}
	// The fake Graph API numbers its message ids in order: the is wamid.e2e.5.
	in.postWA(waReceipt(numberA, "wamid.e2e.1", "read", 0))
	in.postWA(waReceipt(numberA, "wamid.e2e.1", "delivered", 0)) // late: does not move it back
	in.postWA(waReceipt(numberA, "wamid.e2e.5", "failed", 131026))
	eventually(t, "the handoff", func() bool {
		return strings.Contains(string(admin("/api/v1/dialogs?status=handoff")), `"business_number":"`+numberA+`"`)
	})

	type item struct {
		ID       int64 `json:"id"`
		Kind     string
		Delivery *struct {
			MessageID string `json:"message_id"`
			Status    string `json:"status"`
			ErrorCode string `json:"error_code"`
			Error     string `json:"error"`
		} `json:"delivery"`
	}
	var outbox struct{ Items []item }
	if err := json.Unmarshal(admin("/api/v1/outbox?limit=1000"), &outbox); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, it := range outbox.Items {
		if it.Delivery != nil {
			got[it.Delivery.MessageID] = it.Delivery.Status + " " + it.Delivery.ErrorCode
		}
	}
	if got["wamid.e2e.1"] != "read " || got["wamid.e2e.2"] != "sent " || got["wamid.e2e.5"] != "failed 131026" {
		t.Errorf("deliveries: %v", got)
	}
	// The operator learns why, in the issue and in the dialog's history.
	eventually(t, "the private comment", func() bool {
		apis.mu.Lock()
		defer apis.mu.Unlock()
		return slices.Contains(apis.okdesk, "POST /issues/1542/comments")
	})
	var handoff struct{ Items []struct{ ID int64 } }
	if err := json.Unmarshal(admin("/api/v1/dialogs?status=handoff"), &handoff); err != nil || len(handoff.Items) != 1 {
		t.Fatalf("handoff dialogs: %+v %v", handoff, err)
	}
	detail := string(admin(fmt.Sprintf("/api/v1/dialogs/%d", handoff.Items[0].ID)))
	for _, want := range []string{`"kind":"delivery"`, "waba.message_failed", "Message undeliverable"} {
		if !strings.Contains(detail, want) {
			t.Errorf("the dialog's history lacks %s", want)
		}
	}
}
