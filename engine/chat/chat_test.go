package chat

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/sim"
)

var update = flag.Bool("update", false, "rewrite golden files")

// demoFlows are the scenario package's demo flows.
func demoFlows(t *testing.T) *engine.FlowSet {
	t.Helper()
	fs, diags := sim.DefaultLoader().Load("../scenario/testdata/flows")
	if fs == nil {
		t.Fatalf("load demo flows: %v", diags)
	}
	return fs
}

// golden compares got with testdata/golden/name (-update rewrites it).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n--- got\n%s", name, got)
	}
}

func TestChatGolden(t *testing.T) {
	fs := demoFlows(t)
	in := strings.Join([]string{
		"hi", "2", "1", "/vars", "1", "/state", "/reset", "/state", "hi", "boom",
		"/mock okdesk.create_issue fail server_error", "issue", "/mock okdesk.create_issue id=1542", "issue",
		"/okdesk status completed", "/complete okdesk.create_issue", "/mock okdesk.create_issue pending", "issue",
		"/complete okdesk.create_issue fail server_error", "/mock okdesk.create_issue pending", "issue",
		"/complete okdesk.create_issue id=77", "/timers", "/wait 2h", "/history", "/bogus", "/help", "/quit", "never read",
	}, "\n")
	var out bytes.Buffer
	if err := Run(strings.NewReader(in), &out, Options{Flow: fs.Flow("demo")}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "never read") {
		t.Error("input after /quit was read")
	}
	golden(t, "chat.txt", out.Bytes())
}

// TestChatSimpleLead drives a whole conversation of the shipped flow through the
// chat's streams, from greeting to payment.
func TestChatSimpleLead(t *testing.T) {
	fs, diags := sim.DefaultLoader().Load("../../flows.d")
	if fs == nil {
		t.Fatal(diags)
	}
	in := "Здравствуйте\nАнна\n/mock okdesk.create_issue id=1542\nТечёт кондиционер\nКогда придёт мастер?\n" +
		"/okdesk comment Инженер будет завтра\n/okdesk private внутреннее\n/wait 25h\n/okdesk status completed\n/pay\n"
	var out bytes.Buffer
	if err := Run(strings.NewReader(in), &out, Options{Flow: fs.Flow("simple_lead")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  bot: Здравствуйте! Это сервисная служба. Как к вам обращаться?\n  [dialog 1 · ask_name · active]",
		"  bot: Анна, опишите, пожалуйста, проблему.",
		"  action okdesk.create_issue {description: \"Течёт кондиционер\\n\\nКлиент: Анна, телефон +79161234567 (WhatsApp)\", files: [], name: \"Анна\", phone: \"+79161234567\", title: \"WhatsApp: Анна\"} → {contact_id: \"1\", id: \"1542\"}",
		"  bot: Заявка №1542 создана.",
		"[dialog 1 · issue_open · active]  name=\"Анна\" problem=\"Течёт кондиционер\" tries=0 issue_id=\"1542\"",
		"  action okdesk.comment {content: \"Клиент (WhatsApp): Когда придёт мастер?\", issue_id: \"1542\", public: true} → {}",
		"  bot: Комментарий по заявке №1542: Инженер будет завтра",
		"  log: comment on issue 1542 not forwarded (private or the customer's own)",
		"  (clock: 2026-11-30 11:00 +0300)",
		"  bot: template issue_done/ru [\"1542\"] (fallback: the window was closed for",
		"[dialog 1 · wait_payment · active]",
		"  bot: template payment_thanks/ru [\"1542\"]",
		"[dialog 1 · done · finished]",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("chat output lacks %q\n%s", want, out.String())
		}
	}
}

// TestChatPending holds Okdesk's answer back while the customer writes more, then
// delivers it with /complete; and checks the commands' errors.
func TestChatPending(t *testing.T) {
	fs, diags := sim.DefaultLoader().Load("../../flows.d")
	if fs == nil {
		t.Fatal(diags)
	}
	in := "Здравствуйте\nАнна\n/complete okdesk.create_issue\n/mock okdesk.create_issue pending\nТечёт кондиционер\nИ ещё шумит\n" +
		"/complete okdesk.create_issue id=1542\n/complete okdesk.create_issue\n/complete nope\n/complete\n/complete send x\n" +
		"/mock send pending\n/okdesk comment Инженер едет\n/complete send fail window_closed\n" +
		"/mock send pending\n/okdesk comment Буду в 10\n/complete send\n"
	var out bytes.Buffer
	if err := Run(strings.NewReader(in), &out, Options{Flow: fs.Flow("simple_lead")}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  complete okdesk.create_issue: no okdesk.create_issue action is pending (/mock okdesk.create_issue pending holds the next one back)",
		"  (the next okdesk.create_issue stays pending until /complete okdesk.create_issue)",
		"  action okdesk.create_issue {description: \"Течёт кондиционер\\n\\nКлиент: Анна, телефон +79161234567 (WhatsApp)\", files: [], name: \"Анна\", phone: \"+79161234567\", title: \"WhatsApp: Анна\"} → pending (/complete okdesk.create_issue …)\n  [dialog 1 · create_issue · active]",
		"[dialog 1 · create_issue · active]  name=\"Анна\" problem=\"Течёт кондиционер\" tries=0 issue_id=\"\" extra=\"\\nИ ещё шумит\"",
		"  · action.done okdesk.create_issue #3 {contact_id: \"1\", id: \"1542\"} → dialog 1: create_issue → issue_open\n  bot: Заявка №1542 создана.",
		"  action okdesk.comment {content: \"Клиент (WhatsApp), пока создавалась заявка:\\nИ ещё шумит\", files: [], issue_id: \"1542\", public: true} → {}",
		"  /complete: unknown action \"nope\"",
		"  usage: /complete KIND [key=value …] | /complete KIND fail [CODE]",
		"  /complete: \"x\" is not key=value",
		"  (the next send stays pending until /complete send)",
		"  action send {text: \"Комментарий по заявке №1542: Инженер едет\"} → pending (/complete send …)",
		"  · action.failed send #6 failed: window_closed: mocked failure → dialog 1: stays in issue_open [unhandled]\n" +
			"  bot ✗ not delivered (failed: window_closed: mocked failure): \"Комментарий по заявке №1542: Инженер едет\"",
		"  · action.done send #7 {message_id: \"wamid.sim.5\", via: \"text\"} → dialog 1: stays in issue_open [ignored]\n" +
			"  bot: Комментарий по заявке №1542: Буду в 10\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("chat output lacks %q\n%s", want, out.String())
		}
	}
}

func TestChatTelegram(t *testing.T) {
	fs := demoFlows(t)
	var out bytes.Buffer
	err := Run(strings.NewReader("hi\n1\n/photo x\n"), &out, Options{Flow: fs.Flow("demo"), Channel: "telegram"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"you are Telegram chat 512345678", "       1) Альфа", "(you tap \"Альфа\")", "telegram.callback", "/photo is a WhatsApp message"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("chat output lacks %q\n%s", want, out.String())
		}
	}
	if err := Run(strings.NewReader(""), &out, Options{Flow: fs.Flow("demo"), Channel: "sms"}); err == nil {
		t.Error("channel sms accepted")
	}
}
