package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fixit-exchange/fixit/engine/processor"
)

// TestOutboundClientReusesConnections: after a burst of as many concurrent calls
// as there are outbox workers, a second burst to the same API opens no new
// connection (net/http's default transport keeps only two idle per host).
func TestOutboundClientReusesConnections(t *testing.T) {
	var opened atomic.Int64
	var round atomic.Int64
	release := []chan struct{}{make(chan struct{}), make(chan struct{})}
	var arrived sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		<-release[round.Load()] // every call waits until all are in flight: each needs a connection
		_, _ = io.WriteString(w, `{"messages":[{"id":"wamid.x"}]}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	hc := outboundClient()
	n := processor.DefaultOutboxWorkers
	for r := range 2 {
		round.Store(int64(r))
		arrived.Add(n)
		var done sync.WaitGroup
		for range n {
			done.Go(func() {
				resp, err := hc.Post(srv.URL, "application/json", nil)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			})
		}
		arrived.Wait()
		close(release[r])
		done.Wait()
		if got := opened.Load(); got != int64(n) {
			t.Fatalf("after burst %d: %d connections opened, want %d", r+1, got, n)
		}
	}
}
