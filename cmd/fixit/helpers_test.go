package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/internal/startsignals"
)

// binary is the fixit binary built once for the end-to-end tests, exactly as the
// Dockerfile builds it: CGO_ENABLED=0 go build ./cmd/fixit.
var binary string

func TestMain(m *testing.M) {
	// The test binary, like fixit, catches signals from its start; give them back.
	startsignals.Release()
	dir, err := os.MkdirTemp("", "fixit-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "fixit")
	cmd := exec.Command("go", "build", "-o", binary, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fixit: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	appSecret   = "fixit-dev-app-secret"
	adminToken  = "e2e-admin-token"
	okdeskUser  = "okdesk"
	okdeskPass  = "e2e-okdesk-pass"
	onecToken   = "e2e-onec-token"
	verifyToken = "e2e-verify"
)

// fakeAPIs plays the Graph API and Okdesk's REST API and records what they got.
type fakeAPIs struct {
	mu       sync.Mutex
	messages []map[string]any // Graph message bodies
	senders  []string         // the phone-number-id each message was posted to
	okdesk   []string         // "METHOD path"
	issues   int
	invoices []map[string]any // bodies the 1C invoice service got (the invoice example's http call)
	srv      *httptest.Server
}

func newFakeAPIs(t *testing.T) *fakeAPIs {
	f := &fakeAPIs{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/messages"):
			if r.Header.Get("Authorization") != "Bearer e2e-graph-token" {
				w.WriteHeader(401)
				fmt.Fprint(w, `{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}`)
				return
			}
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			f.messages = append(f.messages, m)
			f.senders = append(f.senders, path.Base(path.Dir(r.URL.Path)))
			fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":"%v","wa_id":"%v"}],"messages":[{"id":"wamid.e2e.%d"}]}`, m["to"], m["to"], len(f.messages))
		case r.URL.Path == "/1c/invoices" && r.Method == "POST":
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			f.invoices = append(f.invoices, m)
			fmt.Fprintf(w, `{"number": "00БП-%06d", "amount": 18500}`, len(f.invoices))
		case strings.HasPrefix(r.URL.Path, "/api/v1/"):
			if r.URL.Query().Get("api_token") != "e2e-okdesk-token" {
				w.WriteHeader(401)
				fmt.Fprint(w, `{"errors":"Unauthorized"}`)
				return
			}
			f.okdesk = append(f.okdesk, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/api/v1"))
			switch {
			case r.Method == "GET" && r.URL.Path == "/api/v1/contacts/":
				fmt.Fprint(w, `{"id": 21, "first_name": "Анна", "phone": "+79161234567"}`)
			case r.Method == "POST" && r.URL.Path == "/api/v1/issues/":
				f.issues++
				fmt.Fprint(w, `{"id": 1542}`)
			case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/comments"):
				fmt.Fprint(w, `{"id": 5881}`)
			default:
				w.WriteHeader(404)
				fmt.Fprint(w, `{"errors":"not found"}`)
			}
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPIs) texts() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, m := range f.messages {
		if txt, ok := m["text"].(map[string]any); ok {
			out = append(out, fmt.Sprint(txt["body"]))
		} else {
			out = append(out, fmt.Sprint(m["type"]))
		}
	}
	return out
}

// instance is one running fixit serve.
type instance struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	logs *bytes.Buffer
	mu   *sync.Mutex
	done chan error
}

// testClient bounds every request of the tests: a stuck server fails the test
// instead of hanging it.
var testClient = &http.Client{Timeout: 30 * time.Second}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type syncBuf struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (s syncBuf) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

// startFixit starts fixit serve on db and flows with the test secrets (extra
// overrides: later NAME=value entries win) and waits until it is ready. The process
// is killed when the test ends; its logs are printed when the test failed.
func startFixit(t *testing.T, db, flows string, extra ...string) *instance {
	t.Helper()
	in := spawnFixit(t, db, flows, extra...)
	in.waitReady()
	return in
}

// spawnFixit starts fixit serve without waiting for it to be ready (see waitReady).
func spawnFixit(t *testing.T, db, flows string, extra ...string) *instance {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary, "serve")
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "FIXIT_ADDR=" + addr, "FIXIT_DB=" + db, "FIXIT_FLOWS=" + flows,
		"FIXIT_ADMIN_TOKEN=" + adminToken, "FIXIT_LOG_FORMAT=json", "FIXIT_LOG_LEVEL=debug",
		"APP_SECRET=" + appSecret, "WABA_VERIFY_TOKEN=" + verifyToken,
		"OKDESK_USER=" + okdeskUser, "OKDESK_PASS=" + okdeskPass, "ONEC_TOKEN=" + onecToken,
		"TELEGRAM_SECRET_TOKEN=e2e-telegram-secret",
	}, extra...)
	in := &instance{t: t, cmd: cmd, base: "http://" + addr, logs: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan error, 1)}
	cmd.Stdout = syncBuf{in.mu, in.logs}
	cmd.Stderr = syncBuf{in.mu, in.logs}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-in.done
		if t.Failed() {
			logs := in.logText()
			if len(logs) > 64<<10 {
				logs = "…" + logs[len(logs)-64<<10:]
			}
			t.Logf("fixit logs (%s):\n%s", in.base, logs)
		}
	})
	return in
}

// waitReady waits up to 30 seconds for /readyz to answer 200.
func (in *instance) waitReady() {
	t := in.t
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := testClient.Get(in.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-in.done:
			in.done <- err
			t.Fatalf("fixit exited before ready: %v\n%s", err, in.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("fixit not ready after 30s:\n%s", in.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits up to timeout for the process to exit and returns whether it did and
// its exit error; the error is put back so that later waits (and the cleanup) see it.
func (in *instance) wait(timeout time.Duration) (exited bool, err error) {
	select {
	case err := <-in.done:
		in.done <- err
		return true, err
	case <-time.After(timeout):
		return false, nil
	}
}

// kill ends the process with SIGKILL and waits for it: nothing of its shutdown
// path runs.
func (in *instance) kill() {
	in.t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		in.t.Fatalf("SIGKILL: %v", err)
	}
	if exited, _ := in.wait(30 * time.Second); !exited {
		in.t.Fatal("fixit still running 30s after SIGKILL")
	}
}

// term sends SIGTERM and requires a clean exit (status 0) within 30 seconds.
func (in *instance) term() {
	in.t.Helper()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		in.t.Fatalf("SIGTERM: %v", err)
	}
	exited, err := in.wait(30 * time.Second)
	if !exited {
		in.t.Fatal("fixit did not exit within 30s of SIGTERM")
	}
	if err != nil {
		in.t.Fatalf("exit after SIGTERM: %v (want status 0)", err)
	}
}

func (in *instance) logText() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.logs.String()
}

func (in *instance) do(method, path string, body []byte, hdr ...string) (int, []byte) {
	in.t.Helper()
	req, err := http.NewRequest(method, in.base+path, bytes.NewReader(body))
	if err != nil {
		in.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := testClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func sign(body []byte) string {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func waText(n int, text string) []byte {
	b, _ := json.Marshal(text)
	return []byte(fmt.Sprintf(`{"object":"whatsapp_business_account","entry":[{"id":"310452285489102","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"74951234567","phone_number_id":"498761234560011"},"contacts":[{"profile":{"name":"Anna"},"wa_id":"79161234567"}],"messages":[{"from":"79161234567","id":"wamid.e2e.in.%d","timestamp":"%d","text":{"body":%s},"type":"text"}]},"field":"messages"}]}]}`,
		n, time.Now().Unix(), b))
}

func (in *instance) postWA(body []byte) {
	in.t.Helper()
	if code, b := in.do("POST", "/webhooks/waba", body, "X-Hub-Signature-256", sign(body), "Content-Type", "application/json"); code != 200 {
		in.t.Fatalf("POST /webhooks/waba: %d %s", code, b)
	}
}

// eventually polls cond until it holds or 30 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fixture(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "fixtures", name))
	if err != nil {
		// CI and sessions lay shared/ beside the repo; the connectors keep copies too.
		b, err = os.ReadFile(filepath.Join("..", "..", "server", "testdata", "fixtures", name))
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return req.Header.Get("Authorization")
}
