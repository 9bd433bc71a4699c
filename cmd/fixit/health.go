package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// runHealthcheck asks the local server's /readyz and exits 0 when it answers 200,
// 1 otherwise: the Docker image's HEALTHCHECK (the distroless image has no curl).
func runHealthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flagSet("healthcheck", stderr)
	url := fs.String("url", "", "readiness URL (default: /readyz on the local address of FIXIT_ADDR)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: fixit healthcheck [--url URL] [--timeout 5s]")
		return 2
	}
	if *url == "" {
		*url = readyURL(envOr("FIXIT_ADDR", ":8000"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "fixit healthcheck: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "fixit healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "fixit healthcheck: %s answered %d: %s\n", *url, resp.StatusCode, strings.TrimSpace(string(body)))
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", strings.TrimSpace(string(body)))
	return 0
}

// readyURL is the /readyz URL of a server listening on addr (FIXIT_ADDR): an
// address that listens on every interface (":8000", "0.0.0.0:8000", "[::]:8000")
// is asked on loopback.
func readyURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, "8000"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}
