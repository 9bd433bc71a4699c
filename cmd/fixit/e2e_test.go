package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// TestServeEndToEnd runs the real binary through the reference flow: WhatsApp in,
// Okdesk issue created, engineer completes it, 1C payment, dialog finished.
func TestServeEndToEnd(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) { serveEndToEnd(t, dsn) })
}

func serveEndToEnd(t *testing.T, dsn string) {
	apis := newFakeAPIs(t)
	in := startFixit(t, dsn, "../../flows.d",
		"WABA_API_URL="+apis.srv.URL, "WABA_ACCESS_TOKEN=e2e-graph-token", "WABA_PHONE_NUMBER_ID=498761234560011",
		"OKDESK_API_URL="+apis.srv.URL+"/api/v1", "OKDESK_API_TOKEN=e2e-okdesk-token")

	walkReferenceFlow(t, in, apis)

	// The admin API shows the finished dialog and every event processed.
	code, b := in.do("GET", "/api/v1/dialogs?status=finished", nil, "Authorization", "Bearer "+adminToken)
	var dialogs struct {
		Items []struct {
			ID    json.Number    `json:"id"`
			State string         `json:"state"`
			Vars  map[string]any `json:"vars"`
		} `json:"items"`
	}
	if err := json.Unmarshal(b, &dialogs); code != 200 || err != nil || len(dialogs.Items) != 1 || dialogs.Items[0].Vars["issue_id"] != "1542" {
		t.Fatalf("dialogs: %d %s", code, b)
	}
	// The last reply's own action.done may still be on its way through the inbox.
	eventually(t, "no pending events", func() bool {
		code, b := in.do("GET", "/api/v1/events?status=pending", nil, "Authorization", "Bearer "+adminToken)
		return code == 200 && strings.Contains(string(b), `"items":[]`)
	})
	code, b = in.do("GET", "/api/v1/events?status=failed", nil, "Authorization", "Bearer "+adminToken)
	if code != 200 || !strings.Contains(string(b), `"items":[]`) {
		t.Errorf("failed events: %d %s", code, b)
	}
	apis.mu.Lock()
	issues := apis.issues
	apis.mu.Unlock()
	if issues != 1 {
		t.Errorf("%d Okdesk issues created, want 1", issues)
	}

	// Secrets never reach the logs.
	logs := in.logText()
	for _, secret := range []string{appSecret, adminToken, okdeskPass, onecToken, "e2e-graph-token", "e2e-okdesk-token"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains the secret %q", secret)
		}
	}

	// SIGTERM drains and exits 0.
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-in.done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
		in.done <- err
	case <-time.After(30 * time.Second):
		t.Error("fixit did not exit within 30s of SIGTERM")
	}
}

// walkReferenceFlow takes a new WhatsApp contact through simple_lead to the end:
// name, problem (sent twice, as Meta retries), Okdesk issue 1542 created and
// completed, 1C payment; the fake APIs get the five replies.
func walkReferenceFlow(t *testing.T, in *instance, apis *fakeAPIs) {
	t.Helper()
	in.postWA(waText(1, "Здравствуйте"))
	eventually(t, "the greeting", func() bool { return len(apis.texts()) >= 1 })
	in.postWA(waText(2, "Анна"))
	eventually(t, "the question about the problem", func() bool { return len(apis.texts()) >= 2 })
	body := waText(3, "Течёт кондиционер")
	in.postWA(body)
	in.postWA(body) // Meta retries: acknowledged, processed once
	eventually(t, "the issue number", func() bool {
		tx := apis.texts()
		return len(tx) >= 3 && strings.Contains(tx[2], "№1542")
	})

	// The engineer completes issue 1542 (the fixture): Basic auth.
	if code, b := in.do("POST", "/webhooks/okdesk", fixture(t, "okdesk/new_ticket_status.json"), "Authorization", basic(okdeskUser, okdeskPass)); code != 200 {
		t.Fatalf("okdesk webhook: %d %s", code, b)
	}
	eventually(t, "the completion notice", func() bool {
		tx := apis.texts()
		return len(tx) >= 4 && strings.Contains(tx[3], "выполнена")
	})
	// 1C records the payment (the fixture names okdesk issue 1542): bearer token.
	if code, b := in.do("POST", "/webhooks/onec", fixture(t, "onec/payment_paid.json"), "Authorization", "Bearer "+onecToken); code != 200 {
		t.Fatalf("onec webhook: %d %s", code, b)
	}
	eventually(t, "the thanks", func() bool {
		tx := apis.texts()
		return len(tx) >= 5 && strings.Contains(tx[4], "Оплата")
	})
}

// TestServeDryRun is what `make run` gives a new user: no outbound credentials, the
// demo secrets; actions are recorded as dry-run and the dialog still moves on.
func TestServeDryRun(t *testing.T) {
	in := startFixit(t, filepath.Join(t.TempDir(), "fixit.db"), "../../flows.d")
	// The fixture's message is a year old: outside the 24-hour window the greeting
	// fails with the typed window-closed error, without calling Meta.
	in.postWA(fixture(t, "waba/text.json"))
	eventually(t, "the window-closed failure", func() bool {
		_, b := in.do("GET", "/api/v1/outbox?status=failed", nil, "Authorization", "Bearer "+adminToken)
		return strings.Contains(string(b), `"error_code":"window_closed"`)
	})
	// A message sent now opens the window: the reply is a dry-run.
	in.postWA(waText(1, "Здравствуйте"))
	eventually(t, "a dry-run send in the outbox", func() bool {
		_, b := in.do("GET", "/api/v1/outbox?status=done", nil, "Authorization", "Bearer "+adminToken)
		return strings.Contains(string(b), `"dry_run":true`)
	})
	logs := in.logText()
	if !strings.Contains(logs, "dry-run") {
		t.Errorf("dry-run not logged")
	}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			t.Errorf("a log line is not JSON: %s", sc.Text())
		}
	}
}

// TestServeAlongside runs the customer flow with the invoice example beside it:
// the engineer's completion of a WhatsApp-born issue notifies the customer and
// starts the invoice flow on the same event, which asks 1C for the invoice and
// records it on the issue.
func TestServeAlongside(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, dsn string) {
		flows := t.TempDir()
		for _, f := range []string{"../../flows.d/simple_lead_flow.yaml", "../../examples/okdesk_to_1c_invoice.yaml"} {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(flows, filepath.Base(f)), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		apis := newFakeAPIs(t)
		in := startFixit(t, dsn, flows,
			"WABA_API_URL="+apis.srv.URL, "WABA_ACCESS_TOKEN=e2e-graph-token", "WABA_PHONE_NUMBER_ID=498761234560011",
			"OKDESK_API_URL="+apis.srv.URL+"/api/v1", "OKDESK_API_TOKEN=e2e-okdesk-token",
			"FLOW_ONEC_INVOICE_URL="+apis.srv.URL+"/1c/invoices")

		walkReferenceFlow(t, in, apis) // the customer is notified of the completion
		eventually(t, "the invoice comment on the issue", func() bool {
			apis.mu.Lock()
			defer apis.mu.Unlock()
			return slices.Contains(apis.okdesk, "POST /issues/1542/comments") && len(apis.invoices) == 1
		})
		apis.mu.Lock()
		invoice := apis.invoices[0]
		apis.mu.Unlock()
		if fmt.Sprint(invoice["okdesk_issue_id"]) != "1542" {
			t.Errorf("1C got %v, want the invoice of issue 1542", invoice)
		}

		// The completion went to both dialogs, once each: the admin API lists its
		// deliveries.
		var events struct {
			Items []struct {
				ID         string `json:"id"`
				Status     string `json:"status"`
				DialogID   int64  `json:"dialog_id"`
				Deliveries []struct {
					DialogID  int64  `json:"dialog_id"`
					Flow      string `json:"flow"`
					Alongside bool   `json:"alongside"`
					Status    string `json:"status"`
					Started   bool   `json:"started"`
				} `json:"deliveries"`
			} `json:"items"`
		}
		in.admin("/api/v1/events?source=okdesk", &events)
		if len(events.Items) != 1 {
			t.Fatalf("okdesk events: %+v", events.Items)
		}
		ev := events.Items[0]
		if ev.Status != "processed" || len(ev.Deliveries) != 2 || ev.Deliveries[0].Flow != "simple_lead" ||
			ev.Deliveries[0].DialogID != ev.DialogID || ev.Deliveries[1].Flow != "okdesk_to_1c_invoice" ||
			!ev.Deliveries[1].Alongside || !ev.Deliveries[1].Started {
			t.Errorf("the completion event: %+v", ev)
		}
		var dialogs struct {
			Items []struct {
				ID     int64  `json:"id"`
				Flow   string `json:"flow"`
				Status string `json:"status"`
			} `json:"items"`
		}
		in.admin("/api/v1/dialogs?flow=okdesk_to_1c_invoice", &dialogs)
		if len(dialogs.Items) != 1 || dialogs.Items[0].Status != "finished" || dialogs.Items[0].ID != ev.Deliveries[1].DialogID {
			t.Errorf("invoice dialogs: %+v", dialogs.Items)
		}
	})
}
