package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fixit-exchange/fixit/bench/internal/serve"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakegraph:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("fakegraph", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address (loopback)")
	token := fs.String("token", "", "access token the Authorization header must carry (empty: any)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q: want a loopback address", *addr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	g := &graph{token: *token, subs: map[chan string]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{version}/{phone}/messages", g.messages)
	mux.HandleFunc("POST /{phone}/messages", g.messages)
	mux.HandleFunc("GET /replies", g.replies)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"messages":%d}`, g.count.Load())
	})
	return serve.Run(ctx, *addr, mux, 2*time.Second)
}

// graph is the fake Graph API's state: the message count and the reply streams.
type graph struct {
	token string
	count atomic.Int64
	mu    sync.Mutex
	subs  map[chan string]struct{}
}

// messages answers POST /{phone-number-id}/messages like the Cloud API.
func (g *graph) messages(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if g.token != "" && r.Header.Get("Authorization") != "Bearer "+g.token {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":{"message":"Invalid OAuth access token - Cannot parse access token","type":"OAuthException","code":190,"fbtrace_id":"AbCdEfGh"}}`)
		return
	}
	var m struct {
		To string `json:"to"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil || m.To == "" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":{"message":"(#100) The parameter to is required.","type":"OAuthException","code":100,"fbtrace_id":"AbCdEfGh"}}`)
		return
	}
	n := g.count.Add(1)
	to := strings.TrimPrefix(m.To, "+")
	g.mu.Lock()
	for ch := range g.subs {
		select {
		case ch <- to:
		default: // a subscriber too slow to keep up loses lines rather than stall the API
		}
	}
	g.mu.Unlock()
	toJSON, _ := json.Marshal(to) // a string always marshals
	_, _ = fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":%s,"wa_id":%s}],"messages":[{"id":"wamid.fakegraph.%d"}]}`, toJSON, toJSON, n)
}

// replies streams the recipient of every message received from now on, one a line.
func (g *graph) replies(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan string, 1<<16)
	g.mu.Lock()
	g.subs[ch] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.subs, ch)
		g.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	bw := bufio.NewWriter(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case to := <-ch:
			_, _ = bw.WriteString(to)
			_ = bw.WriteByte('\n')
			// Drain what is already queued before flushing once.
			for more := true; more; {
				select {
				case to := <-ch:
					_, _ = bw.WriteString(to)
					_ = bw.WriteByte('\n')
				default:
					more = false
				}
			}
			if bw.Flush() != nil {
				return
			}
			fl.Flush()
		}
	}
}
