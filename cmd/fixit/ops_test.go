package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	gormlogger "gorm.io/gorm/logger"

	"github.com/fixit-exchange/fixit/engine/store"
	"github.com/fixit-exchange/fixit/engine/store/storetest"
)

// fixitCmd runs a fixit command to its end with env and returns its exit code and
// output.
func fixitCmd(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("run fixit %v: %v", args, err)
	return 0, "", ""
}

// pgAdmin opens the administrative PostgreSQL connection the tests use.
func pgAdmin(t *testing.T) *gorm.DB {
	t.Helper()
	admin := os.Getenv("FIXIT_TEST_PG")
	if admin == "" {
		admin = storetest.DefaultAdminURL
	}
	db, err := gorm.Open(postgres.Open(admin), &gorm.Config{Logger: gormlogger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	sqlDB.SetMaxOpenConns(1) // one session: its advisory locks stay with it
	t.Cleanup(func() { _ = sqlDB.Close() })
	return db
}

func dbName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// holdMigrations takes the advisory lock every migration transaction takes first,
// in the database of dsn, and waits until a server is blocked on it: the server is
// then past its first instruction and not ready. release lets it go on.
func holdMigrations(t *testing.T, admin *gorm.DB, dsn string) (waitBlocked, release func()) {
	t.Helper()
	// Advisory locks are per database: take it in the test database itself.
	db, err := gorm.Open(postgres.Open(dsn), &gorm.Config{Logger: gormlogger.Discard})
	if err != nil {
		t.Fatal(err)
	}
	sqlDB, _ := db.DB()
	sqlDB.SetMaxOpenConns(1)
	if err := db.Exec(`SELECT pg_advisory_lock(?)`, store.MigrationLockID).Error; err != nil {
		t.Fatal(err)
	}
	name := dbName(t, dsn)
	waitBlocked = func() {
		t.Helper()
		eventually(t, "fixit waiting for the migration lock", func() bool {
			var n int64
			_ = admin.Raw(`SELECT COUNT(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
				WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = ?`, name).Scan(&n).Error
			return n > 0
		})
	}
	released := false
	release = func() {
		if !released {
			released = true
			_ = db.Exec(`SELECT pg_advisory_unlock(?)`, store.MigrationLockID).Error
			_ = sqlDB.Close()
		}
	}
	t.Cleanup(release)
	return waitBlocked, release
}

// TestServeSignalsAndHealth drives the real binary on PostgreSQL, held in its
// migrations so that it is certainly not ready: SIGHUPs then are remembered and
// applied once (the flows reload, unchanged) when it is; SIGTERM then ends it with
// status 0. Ready, `fixit healthcheck` says so; with the database unreachable
// /readyz and the healthcheck fail, and recover with it.
func TestServeSignalsAndHealth(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	admin := pgAdmin(t)

	// SIGHUP before ready.
	waitBlocked, release := holdMigrations(t, admin, dsn)
	in := spawnFixit(t, dsn, "../../flows.d")
	waitBlocked()
	for range 3 {
		if err := in.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the SIGHUP noted", func() bool {
		return strings.Contains(in.logText(), "SIGHUP before the server is ready")
	})
	select {
	case err := <-in.done:
		in.done <- err // for the cleanup
		t.Fatalf("fixit exited on SIGHUP during start-up: %v\n%s", err, in.logText())
	default:
	}
	release()
	in.waitReady()
	eventually(t, "the deferred reload", func() bool {
		v, _ := metric(t, in, `fixit_flows_reload_total{result="unchanged"}`)
		return v == 1
	})
	if v, _ := metric(t, in, `fixit_flows_reload_total{result="ok"}`); v != 1 {
		t.Errorf("%v reloads ok, want 1 (the start)", v)
	}
	if n := strings.Count(in.logText(), "reloading the flows for the SIGHUP received during start-up"); n != 1 {
		t.Errorf("the deferred reload logged %d times, want once", n)
	}

	// fixit healthcheck: ready.
	addr := strings.TrimPrefix(in.base, "http://")
	_, port, _ := strings.Cut(addr, ":")
	for _, env := range [][]string{{"FIXIT_ADDR=" + addr}, {"FIXIT_ADDR=:" + port}} {
		if code, out, errOut := fixitCmd(t, env, "healthcheck"); code != 0 || !strings.Contains(out, `"status":"ok"`) {
			t.Errorf("healthcheck with %v: exit %d %s %s", env, code, out, errOut)
		}
	}
	// The database becomes unreachable: not ready, and the healthcheck says why.
	name := dbName(t, dsn)
	if err := admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`).Error; err != nil {
		t.Fatal(err)
	}
	if err := admin.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ?`, name).Error; err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz to fail", func() bool {
		code, b := in.do("GET", "/readyz", nil)
		return code == 503 && strings.Contains(string(b), "database unreachable")
	})
	if code, _, errOut := fixitCmd(t, []string{"FIXIT_ADDR=" + addr}, "healthcheck"); code != 1 || !strings.Contains(errOut, "503") {
		t.Errorf("healthcheck with the database unreachable: exit %d %s", code, errOut)
	}
	if err := admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`).Error; err != nil {
		t.Fatal(err)
	}
	eventually(t, "/readyz to recover", func() bool {
		code, _ := in.do("GET", "/readyz", nil)
		return code == 200
	})
	in.term()
	if code, _, errOut := fixitCmd(t, []string{"FIXIT_ADDR=" + addr}, "healthcheck", "--timeout", "2s"); code != 1 || errOut == "" {
		t.Errorf("healthcheck with no server: exit %d %s", code, errOut)
	}

	// SIGTERM before ready: a clean stop, status 0.
	waitBlocked, release = holdMigrations(t, admin, dsn)
	in = spawnFixit(t, dsn, "../../flows.d")
	waitBlocked()
	in.term()
	release()
	if !strings.Contains(in.logText(), "fixit stopped during start-up") {
		t.Errorf("no line about stopping during start-up:\n%s", in.logText())
	}
}

// TestServeTermEarly sends SIGTERM as soon as the server has said it is starting,
// on SQLite: it stops cleanly with status 0, wherever in its start-up it was; and a
// second server on the same SQLite file is refused.
func TestServeTermEarly(t *testing.T) {
	db := filepath.Join(t.TempDir(), "fixit.db")
	in := spawnFixit(t, db, "../../flows.d")
	eventually(t, "the first log line", func() bool { return strings.Contains(in.logText(), "fixit starting") })
	in.term()

	first := startFixit(t, db, "../../flows.d")
	second := spawnFixit(t, db, "../../flows.d")
	if exited, err := second.wait(30 * time.Second); !exited || err == nil || !strings.Contains(second.logText(), "another fixit serves it") {
		t.Errorf("a second server on the same file: exited %v (%v)\n%s", exited, err, second.logText())
	}
	first.term()
}

// ---- backups and copies of real data ----

// apiState is what the admin API shows of an instance: every dialog with its
// history and timers, every event, every action.
func apiState(t *testing.T, in *instance) map[string]string {
	t.Helper()
	state := map[string]string{}
	for _, list := range []string{"dialogs", "events", "outbox"} {
		items := listAll[json.RawMessage](in, "/api/v1/"+list)
		b, _ := json.Marshal(items)
		state[list] = string(b)
		if list != "dialogs" {
			continue
		}
		for _, raw := range items {
			var d struct {
				ID int64 `json:"id"`
			}
			_ = json.Unmarshal(raw, &d)
			code, b := in.do("GET", fmt.Sprintf("/api/v1/dialogs/%d", d.ID), nil, "Authorization", "Bearer "+adminToken)
			if code != 200 {
				t.Fatalf("dialog %d: %d %s", d.ID, code, b)
			}
			state[fmt.Sprintf("dialog %d", d.ID)] = string(b)
		}
	}
	return state
}

func sameState(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	if len(got) != len(want) {
		t.Errorf("%s: %d lists and dialogs, want %d", what, len(got), len(want))
	}
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s: %s differs:\n got %s\nwant %s", what, k, got[k], want[k])
		}
	}
}

// TestBackupRestoreAndCopy makes real data with the reference flow (one dialog
// finished, one waiting for the customer's name), backs the SQLite database up
// while it serves, copies the stopped instance to PostgreSQL and from there to a
// new SQLite file: each copy serves the same state and carries on the waiting
// dialog. Then the backup is restored over the original and serves the state it
// was taken in.
func TestBackupRestoreAndCopy(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "fixit.db")
	apis := newFakeAPIs(t)
	apiEnv := []string{"WABA_API_URL=" + apis.srv.URL, "WABA_ACCESS_TOKEN=e2e-graph-token", "WABA_PHONE_NUMBER_ID=498761234560011",
		"OKDESK_API_URL=" + apis.srv.URL + "/api/v1", "OKDESK_API_TOKEN=e2e-okdesk-token"}
	in := startFixit(t, db, "../../flows.d", append(apiEnv, "FIXIT_RETENTION=30d")...)
	walkReferenceFlow(t, in, apis)
	in.postWA(waText(10, "Здравствуйте снова")) // a new dialog, asking for the name
	eventually(t, "the second greeting", func() bool { return len(apis.texts()) >= 6 })
	settle(t, in, 30*time.Second)
	want := apiState(t, in)
	// Retention runs beside the work and, everything being new, removes nothing.
	if !strings.Contains(in.logText(), `"msg":"retention purge on","keep":"720h0m0s"`) {
		t.Errorf("no line about the retention purge starting")
	}

	backup := filepath.Join(dir, "backup.db")
	if code, out, errOut := fixitCmd(t, []string{"FIXIT_DB=" + db}, "backup", backup); code != 0 || !strings.Contains(out, "dialogs") {
		t.Fatalf("backup while serving: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := fixitCmd(t, []string{"FIXIT_DB=" + db}, "restore", backup); code != 1 || !strings.Contains(errOut, "stop it first") {
		t.Errorf("restore while serving: exit %d %s", code, errOut)
	}
	if code, _, errOut := fixitCmd(t, []string{"FIXIT_DB=" + db}, "copy", "--to", filepath.Join(dir, "x.db")); code != 1 || !strings.Contains(errOut, "stop it first") {
		t.Errorf("copy while serving: exit %d %s", code, errOut)
	}
	in.term()

	// The waiting dialog goes on in each copy: on PostgreSQL it is told the name
	// and asks for the problem; on the SQLite copy of that, told the problem, it
	// opens the Okdesk issue.
	pg := storetest.PostgresDSN(t)
	last := filepath.Join(dir, "last.db")
	for i, hop := range []struct{ from, to, say, reply string }{
		{db, pg, "Борис", "Борис, опишите"},
		{pg, last, "Течёт кран", "№1542"},
	} {
		code, out, errOut := fixitCmd(t, nil, "copy", "--from", hop.from, "--to", hop.to)
		if code != 0 || !strings.Contains(out, "every table's count equal on both sides") {
			t.Fatalf("copy %s → %s: exit %d\n%s%s", store.Describe(hop.from), store.Describe(hop.to), code, out, errOut)
		}
		if strings.Contains(out+errOut, "postgres@") || strings.Contains(out+errOut, "sslmode") {
			t.Errorf("copy printed the database URL:\n%s%s", out, errOut)
		}
		c := startFixit(t, hop.to, "../../flows.d", apiEnv...)
		sameState(t, store.Describe(hop.to), apiState(t, c), want)
		sent := len(apis.texts())
		c.postWA(waText(20+i, hop.say))
		eventually(t, "the reply "+hop.reply, func() bool {
			tx := apis.texts()
			return len(tx) > sent && strings.Contains(tx[len(tx)-1], hop.reply)
		})
		settle(t, c, 30*time.Second)
		want = apiState(t, c)
		c.term()
	}

	// Restore the backup over the original database (stopped): it serves the
	// state the backup was taken in.
	code, out, errOut := fixitCmd(t, []string{"FIXIT_DB=" + db}, "restore", backup)
	if code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	r := startFixit(t, db, "../../flows.d", apiEnv...)
	dialogs := listAll[struct {
		State string `json:"state"`
	}](r, "/api/v1/dialogs")
	if len(dialogs) != 2 || dialogs[0].State != "ask_name" {
		t.Errorf("after the restore: dialogs %+v, want the backup's two, the newest still asking for the name", dialogs)
	}
	r.term()
}
