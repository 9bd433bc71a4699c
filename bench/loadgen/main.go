package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Bounds of the flags: a mistyped value must not run for an hour or eat the memory.
const (
	maxConns    = 4096
	maxDuration = 10 * time.Minute
	maxRequests = 2_000_000
	maxContacts = 1_000_000
	maxSteps    = 16
)

// config is the parsed command line.
type config struct {
	target   string
	conns    int
	duration time.Duration
	warmup   time.Duration
	count    int
	pool     int
	contacts int
	secret   string
	label    string
	header   bool
	walk     int
	replies  string
	timeout  time.Duration
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	client := newClient(cfg.conns)
	defer client.CloseIdleConnections()
	header, row := floodHeader, ""
	if cfg.walk > 0 {
		header = walkHeader
		res, err := walk(ctx, client, cfg)
		if err != nil {
			return err
		}
		row = res.row(cfg)
	} else {
		res, err := flood(ctx, client, cfg)
		if err != nil {
			return err
		}
		row = res.row(cfg)
	}
	if cfg.header {
		fmt.Fprintln(out, header)
	}
	fmt.Fprintln(out, row)
	return nil
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.StringVar(&c.target, "url", "http://127.0.0.1:8000/webhooks/waba", "webhook URL (loopback only)")
	fs.IntVar(&c.conns, "c", 64, "concurrent connections (closed loop: one request in flight each)")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "measured duration (flood mode)")
	fs.DurationVar(&c.warmup, "warmup", 0, "unmeasured load before the measured run (flood mode)")
	fs.IntVar(&c.count, "n", 0, "stop after this many measured requests (0: run for -d)")
	fs.IntVar(&c.pool, "pool", 300_000, "precomputed bodies when -n is 0; the run ends early when they run out")
	fs.IntVar(&c.contacts, "contacts", 1000, "distinct WhatsApp contacts the messages come from")
	fs.StringVar(&c.secret, "secret", "fixit-dev-app-secret", "APP_SECRET the bodies are signed with")
	fs.StringVar(&c.label, "label", "target", "server name printed in the row")
	fs.BoolVar(&c.header, "header", false, "print the table header before the row")
	fs.IntVar(&c.walk, "walk", 0, "dialog mode: steps each contact walks, paced by the replies (0: flood mode)")
	fs.StringVar(&c.replies, "replies", "", "reply stream of bench/fakegraph (dialog mode), e.g. http://127.0.0.1:9000/replies")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up on the dialogs after this long (dialog mode)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case c.conns < 1 || c.conns > maxConns:
		return c, fmt.Errorf("-c %d: want 1..%d", c.conns, maxConns)
	case c.duration <= 0 || c.duration > maxDuration, c.warmup < 0 || c.warmup > maxDuration:
		return c, fmt.Errorf("-d and -warmup: want at most %s", maxDuration)
	case c.count < 0 || c.count > maxRequests, c.pool < 1 || c.pool > maxRequests:
		return c, fmt.Errorf("-n and -pool: want at most %d", maxRequests)
	case c.contacts < 1 || c.contacts > maxContacts:
		return c, fmt.Errorf("-contacts %d: want 1..%d", c.contacts, maxContacts)
	case c.walk < 0 || c.walk > maxSteps:
		return c, fmt.Errorf("-walk %d: want 0..%d", c.walk, maxSteps)
	case c.timeout <= 0 || c.timeout > maxDuration:
		return c, fmt.Errorf("-timeout: want at most %s", maxDuration)
	case c.secret == "":
		return c, errors.New("-secret is empty")
	}
	if err := requireLoopback(c.target); err != nil {
		return c, err
	}
	if c.walk > 0 {
		if c.replies == "" {
			return c, errors.New("-walk needs -replies")
		}
		if err := requireLoopback(c.replies); err != nil {
			return c, err
		}
	}
	return c, nil
}

// requireLoopback refuses any URL whose host is not a loopback address.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("parse target %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("target %q: only http:// on loopback is supported", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("target %q is not a loopback address: refusing to load it", raw)
}

// newClient is a keep-alive client with exactly conns connections to the target.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	}
}

// bodies builds and signs WhatsApp text webhooks: the body and its
// X-Hub-Signature-256 value.
type bodies struct {
	secret []byte
	run    string
	now    int64
}

func newBodies(secret string) *bodies {
	now := time.Now()
	return &bodies{secret: []byte(secret), run: strconv.FormatInt(now.UnixNano(), 36), now: now.Unix()}
}

// waID is the WhatsApp id (international number, digits only) of contact i.
func waID(i int) string { return strconv.FormatInt(79_160_000_000+int64(i), 10) }

// build returns message seq of contact i with text, in the Cloud API's shape.
func (b *bodies) build(seq, contact int, text string) (body []byte, signature string) {
	id := waID(contact)
	txt, _ := json.Marshal(text) // a string always marshals
	body = fmt.Appendf(nil, `{"object":"whatsapp_business_account","entry":[{"id":"310452285489102","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"74951234567","phone_number_id":"498761234560011"},"contacts":[{"profile":{"name":"Bench %d"},"wa_id":"%s"}],"messages":[{"from":"%s","id":"wamid.bench.%s.%d","timestamp":"%d","text":{"body":%s},"type":"text"}]},"field":"messages"}]}]}`,
		contact, id, id, b.run, seq, b.now, txt)
	m := hmac.New(sha256.New, b.secret)
	m.Write(body)
	return body, "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// request is one precomputed delivery.
type request struct {
	body []byte
	sig  string
}

// sample is what one worker measured.
type sample struct {
	lat    []time.Duration // of acknowledged requests
	errors map[string]int  // by status code, or "net"
}

func (s *sample) merge(o sample) {
	s.lat = append(s.lat, o.lat...)
	for k, v := range o.errors {
		s.errors[k] += v
	}
}

// post sends one delivery and reads the whole answer so the connection is reused.
func post(ctx context.Context, client *http.Client, target string, r request) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(r.body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", r.sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// floodResult is the outcome of a flood run.
type floodResult struct {
	sample
	elapsed   time.Duration
	exhausted bool
}

const floodHeader = "server         conns  deliveries/s      p50      p90      p99   acked  errors"

func (r floodResult) row(c config) string {
	q := quantiles(r.lat)
	rate := float64(len(r.lat)) / r.elapsed.Seconds()
	errs := formatErrors(r.errors)
	if r.exhausted {
		errs += " (body pool exhausted)"
	}
	return fmt.Sprintf("%-14s %5d  %12.0f %8s %8s %8s %7d  %s",
		c.label, c.conns, rate, ms(q[0]), ms(q[1]), ms(q[2]), len(r.lat), errs)
}

// flood runs the closed loop: warm-up first, unmeasured, then the measured run.
func flood(ctx context.Context, client *http.Client, c config) (floodResult, error) {
	warmN := 0
	if c.warmup > 0 {
		warmN = min(c.pool, 200_000)
	}
	n := c.pool
	if c.count > 0 {
		n = c.count
	}
	b := newBodies(c.secret)
	all := make([]request, warmN+n)
	for i := range all {
		body, sig := b.build(i, i%c.contacts, "Здравствуйте")
		all[i] = request{body, sig}
	}
	if warmN > 0 {
		if _, err := loop(ctx, client, c, all[:warmN], c.warmup); err != nil {
			return floodResult{}, fmt.Errorf("warm up: %w", err)
		}
	}
	duration := c.duration
	if c.count > 0 {
		duration = maxDuration
	}
	return loop(ctx, client, c, all[warmN:], duration)
}

// loop sends reqs from c.conns workers until they run out or duration passes.
func loop(ctx context.Context, client *http.Client, c config, reqs []request, duration time.Duration) (floodResult, error) {
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var next atomic.Int64
	samples := make([]sample, c.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range c.conns {
		samples[w] = sample{lat: make([]time.Duration, 0, len(reqs)/c.conns+1), errors: map[string]int{}}
		wg.Go(func() {
			s := &samples[w]
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(reqs)) {
					return
				}
				t0 := time.Now()
				code, err := post(ctx, client, c.target, reqs[i])
				switch {
				case err != nil && ctx.Err() != nil:
					return // cut off by the end of the run: not a failure
				case err != nil:
					s.errors["net"]++
				case code == http.StatusOK:
					s.lat = append(s.lat, time.Since(t0))
				default:
					s.errors[strconv.Itoa(code)]++
				}
			}
		})
	}
	wg.Wait()
	res := floodResult{sample: sample{errors: map[string]int{}}, elapsed: time.Since(start)}
	res.exhausted = next.Load() >= int64(len(reqs)) && c.count == 0
	for _, s := range samples {
		res.merge(s)
	}
	if len(res.lat) == 0 {
		return res, fmt.Errorf("no request to %s was acknowledged (errors: %s)", c.target, formatErrors(res.errors))
	}
	return res, nil
}

// walkTexts are the customer's messages of simple_lead: a greeting, a name, the
// problem, then follow-ups.
var walkTexts = []string{"Здравствуйте", "Анна", "Течёт кондиционер в спальне"}

func walkText(step int) string {
	if step < len(walkTexts) {
		return walkTexts[step]
	}
	return "Дополнение " + strconv.Itoa(step)
}

// walkResult is the outcome of a dialog run.
type walkResult struct {
	sample
	replies  int
	want     int
	elapsed  time.Duration
	timedOut bool
}

const walkHeader = "server         conns  contacts steps  steps/s   step p50  step p99  replies  errors"

func (r walkResult) row(c config) string {
	q := quantiles(r.lat)
	errs := formatErrors(r.errors)
	if r.timedOut {
		errs += fmt.Sprintf(" (timed out: %d of %d replies)", r.replies, r.want)
	}
	return fmt.Sprintf("%-14s %5d  %8d %5d %8.0f %10s %9s %8d  %s",
		c.label, c.conns, c.contacts, c.walk, float64(r.replies)/r.elapsed.Seconds(), ms(q[0]), ms(q[2]), r.replies, errs)
}

// walk plays c.walk steps for every contact: step k+1 of a contact is posted when
// the fake Graph API has received the reply to step k. The latency of a step runs
// from posting the message to its reply reaching the fake Graph API.
func walk(ctx context.Context, client *http.Client, c config) (walkResult, error) {
	b := newBodies(c.secret)
	reqs := make([][]request, c.contacts)
	for i := range reqs {
		reqs[i] = make([]request, c.walk)
		for s := range c.walk {
			body, sig := b.build(i*maxSteps+s, i, walkText(s))
			reqs[i][s] = request{body, sig}
		}
	}
	index := make(map[string]int, c.contacts)
	for i := range c.contacts {
		index[waID(i)] = i
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	stream, err := subscribe(ctx, c.replies)
	if err != nil {
		return walkResult{}, err
	}
	defer stream.Close()

	res := walkResult{sample: sample{errors: map[string]int{}}, want: c.contacts * c.walk}
	type job struct{ contact, step int }
	queue := make(chan job, c.contacts)
	sent := make([]time.Time, c.contacts) // when the pending step of a contact was posted
	steps := make([]int, c.contacts)      // replies received per contact
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range c.conns {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-queue:
					mu.Lock()
					sent[j.contact] = time.Now()
					mu.Unlock()
					code, err := post(ctx, client, c.target, reqs[j.contact][j.step])
					mu.Lock()
					switch {
					case err != nil && ctx.Err() != nil:
					case err != nil:
						res.errors["net"]++
					case code != http.StatusOK:
						res.errors[strconv.Itoa(code)]++
					}
					mu.Unlock()
				}
			}
		})
	}
	start := time.Now()
	for i := range c.contacts {
		queue <- job{i, 0}
	}
	sc := bufio.NewScanner(stream)
	for res.replies < res.want && sc.Scan() {
		i, ok := index[strings.TrimSpace(sc.Text())]
		if !ok {
			continue
		}
		mu.Lock()
		steps[i]++
		res.replies++
		if steps[i] <= c.walk {
			res.lat = append(res.lat, time.Since(sent[i]))
		}
		nextStep := steps[i]
		mu.Unlock()
		if nextStep < c.walk {
			queue <- job{i, nextStep}
		}
	}
	res.elapsed = time.Since(start)
	res.timedOut = res.replies < res.want
	cancel()
	wg.Wait()
	if res.replies == 0 {
		return res, fmt.Errorf("no reply reached %s (errors: %s)", c.replies, formatErrors(res.errors))
	}
	return res, nil
}

// subscribe opens the reply stream of the fake Graph API.
func subscribe(ctx context.Context, replies string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, replies, nil)
	if err != nil {
		return nil, fmt.Errorf("build reply stream request: %w", err)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("open reply stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, fmt.Errorf("open reply stream: status %d", resp.StatusCode)
	}
	return resp.Body, nil
}

// quantiles returns p50, p90 and p99 of lat (sorted in place).
func quantiles(lat []time.Duration) [3]time.Duration {
	if len(lat) == 0 {
		return [3]time.Duration{}
	}
	slices.Sort(lat)
	at := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	return [3]time.Duration{at(0.50), at(0.90), at(0.99)}
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

func formatErrors(errs map[string]int) string {
	if len(errs) == 0 {
		return "0"
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, errs[k])
	}
	return strings.Join(parts, " ")
}
