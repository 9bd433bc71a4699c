package server

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStreamIDsAcrossRestarts: the feed of a restarted server numbers its changes
// above the run before it, so a client resuming with an id of that run is told to
// reset instead of being given the new run's changes as if nothing were missed.
func TestStreamIDsAcrossRestarts(t *testing.T) {
	before := NewStream()
	for range 12 {
		before.Publish(Change{Type: ChangeDialog})
	}
	last := before.backlog[len(before.backlog)-1].ID
	time.Sleep(time.Millisecond) // a restart takes longer than this
	after := NewStream()
	for range 12 {
		after.Publish(Change{Type: ChangeDialog})
	}
	if first := after.backlog[0].ID; first <= last {
		t.Fatalf("the restarted feed's first id %d is not above the last one before it (%d)", first, last)
	}
	missed, complete, ch := after.subscribe(last - 2)
	defer after.unsubscribe(ch)
	if complete {
		t.Errorf("a client resuming from the run before was told it missed only %d changes", len(missed))
	}
	missed, complete, ch2 := after.subscribe(after.backlog[9].ID)
	defer after.unsubscribe(ch2)
	if !complete || len(missed) != 2 {
		t.Errorf("resuming inside this run: complete=%v, %d missed, want the 2 after it", complete, len(missed))
	}
}

// serveEnv serves e's server on a port of its own until the test ends; it returns
// the base URL and a function that shuts the server down and returns Serve's error.
func serveEnv(t *testing.T, e *env) (string, func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	stop := sync.OnceValue(func() error { cancel(); return <-done })
	t.Cleanup(func() { _ = stop() })
	return "http://" + ln.Addr().String(), stop
}

func openStream(t *testing.T, url string) (*bufio.Reader, func()) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/api/v1/stream", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %s", resp.Status)
	}
	return bufio.NewReader(resp.Body), func() { resp.Body.Close() }
}

// TestStreamOutlivesRequestTimeouts: the server's read and write timeouts bound a
// request, not the live feed, which keeps going with its heartbeat.
func TestStreamOutlivesRequestTimeouts(t *testing.T) {
	e := newEnv(t)
	e.srv.readTimeout, e.srv.writeTimeout, e.srv.heartbeat = 100*time.Millisecond, 100*time.Millisecond, 20*time.Millisecond
	url, _ := serveEnv(t, e)
	r, closeStream := openStream(t, url)
	defer closeStream()
	// Ten times the timeouts in pings (at least, on a slow machine: each ping is
	// at least a heartbeat after the one before it).
	for pings := 0; pings < 50; {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("the feed ended after %d pings: %v", pings, err)
		}
		if strings.HasPrefix(line, ": ping") {
			pings++
		}
	}
}

// TestShutdownEndsStreams: a client on the live feed does not hold a graceful
// shutdown: Serve returns cleanly and the client's feed ends.
func TestShutdownEndsStreams(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ShutdownTimeout = time.Minute })
	url, stop := serveEnv(t, e)
	r, closeStream := openStream(t, url)
	defer closeStream()
	if _, err := r.ReadString('\n'); err != nil { // the feed is open
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	for {
		if _, err := r.ReadString('\n'); err != nil {
			break // the feed ended
		}
	}
}
