package main

import (
	"strings"
	"testing"
)

func TestReadyURL(t *testing.T) {
	cases := []struct{ addr, want string }{
		{":8000", "http://127.0.0.1:8000/readyz"},
		{"0.0.0.0:9000", "http://127.0.0.1:9000/readyz"},
		{"[::]:8000", "http://[::1]:8000/readyz"},
		{"127.0.0.1:8123", "http://127.0.0.1:8123/readyz"},
		{"fixit.internal:80", "http://fixit.internal:80/readyz"},
		{"[fd00::5]:8000", "http://[fd00::5]:8000/readyz"},
		{"localhost", "http://localhost:8000/readyz"},
	}
	for _, c := range cases {
		if got := readyURL(c.addr); got != c.want {
			t.Errorf("readyURL(%q) = %q, want %q", c.addr, got, c.want)
		}
	}
}

// The operations commands answer bad arguments with their usage and exit 2.
func TestOpsUsage(t *testing.T) {
	for _, args := range [][]string{
		{"backup"}, {"backup", "a", "b"}, {"restore"}, {"copy"}, {"copy", "--from", "x.db"},
		{"healthcheck", "extra"}, {"healthcheck", "--timeout", "soon"},
	} {
		code, _, errOut := runCLI(args...)
		if code != 2 || !strings.Contains(errOut, "usage: fixit "+args[0]) {
			t.Errorf("fixit %v: exit %d, %q", args, code, errOut)
		}
	}
	code, out, _ := runCLI("help")
	for _, c := range []string{"healthcheck", "backup", "restore", "copy"} {
		if code != 0 || !strings.Contains(out, "fixit "+c) {
			t.Errorf("help does not list %s:\n%s", c, out)
		}
	}
	// A retention below the minimum or unreadable stops serve before it starts.
	for _, v := range []string{"3d", "ninety"} {
		code, _, errOut := fixitCmd(t, []string{"FIXIT_RETENTION=" + v, "FIXIT_DB=" + t.TempDir() + "/f.db"}, "serve")
		if code != 2 || !strings.Contains(errOut, "FIXIT_RETENTION") {
			t.Errorf("serve with FIXIT_RETENTION=%s: exit %d %s", v, code, errOut)
		}
	}
	// A PostgreSQL database is backed up with its own tools.
	if code, _, errOut := runCLI("backup", "--db", "postgres://u@127.0.0.1/x", t.TempDir()+"/b.db"); code != 1 || !strings.Contains(errOut, "pg_dump") {
		t.Errorf("backup of PostgreSQL: exit %d %s", code, errOut)
	}
}
