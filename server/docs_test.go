package server

import (
	"encoding/json"
	"html"
	"regexp"
	"sort"
	"strings"
	"testing"
)

var httpMethods = map[string]bool{"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true}

// TestOpenAPIMatchesRoutes: every route registered in gin is in openapi.json and
// every operation of openapi.json is a route, so the two cannot drift.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	rec := e.do("GET", "/openapi.json", nil)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("openapi.json: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Version string `json:"version"`
		} `json:"info"`
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Info.Version != "test" {
		t.Errorf("openapi %q, version %q", doc.OpenAPI, doc.Info.Version)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			if httpMethods[m] {
				documented[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	param := regexp.MustCompile(`:([A-Za-z_]+)`)
	registered := map[string]bool{}
	for _, r := range e.srv.engine.Routes() {
		if isConsolePath(r.Path) {
			continue // the console's HTML pages are not the API
		}
		registered[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	if len(registered) < 16 {
		t.Fatalf("only %d routes registered: %v", len(registered), registered)
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for d := range documented {
		if !registered[d] {
			t.Errorf("openapi.json documents %s, which is not a route", d)
		}
	}
}

// TestOpenAPIIsComplete checks what a hand-written document gets wrong: dangling
// $refs, operations without responses or error schemas, admin operations without
// security, and the 1C notification contract.
func TestOpenAPIIsComplete(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPISource, &doc); err != nil {
		t.Fatal(err)
	}
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	walk(doc)
	if len(refs) < 50 {
		t.Fatalf("only %d $refs found", len(refs))
	}
	for _, r := range refs {
		if !resolves(doc, r) {
			t.Errorf("$ref %s does not resolve", r)
		}
	}
	paths := doc["paths"].(map[string]any)
	for path, ops := range paths {
		for m, raw := range ops.(map[string]any) {
			op := raw.(map[string]any)
			resp, _ := op["responses"].(map[string]any)
			if len(resp) == 0 || op["summary"] == nil || op["operationId"] == nil {
				t.Errorf("%s %s lacks responses, summary or operationId", m, path)
			}
			sec, _ := op["security"].([]any)
			if strings.HasPrefix(path, "/api/v1/") {
				if len(sec) != 1 || sec[0].(map[string]any)["adminBearer"] == nil {
					t.Errorf("%s %s: admin operation without adminBearer security", m, path)
				}
				for _, st := range []string{"200", "401", "404"} {
					if resp[st] == nil {
						t.Errorf("%s %s: no %s response", m, path, st)
					}
				}
			}
			if strings.HasPrefix(path, "/webhooks/") && m == "post" {
				for _, st := range []string{"200", "400", "401", "405", "413", "503"} {
					if resp[st] == nil {
						t.Errorf("%s %s: no %s response", m, path, st)
					}
				}
				if len(sec) != 1 || op["requestBody"] == nil {
					t.Errorf("%s %s: no security or request body", m, path)
				}
			}
		}
	}
	schemes := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	for name, want := range map[string]string{"adminBearer": "bearer", "okdeskBasic": "basic", "onecBearer": "bearer"} {
		if s := schemes[name].(map[string]any); s["type"] != "http" || s["scheme"] != want {
			t.Errorf("security scheme %s: %v", name, s)
		}
	}
	for name, header := range map[string]string{"wabaSignature": "X-Hub-Signature-256", "telegramSecret": "X-Telegram-Bot-Api-Secret-Token"} {
		if s := schemes[name].(map[string]any); s["type"] != "apiKey" || s["in"] != "header" || s["name"] != header {
			t.Errorf("security scheme %s: %v", name, s)
		}
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	onec := schemas["OneCNotification"].(map[string]any)
	props := onec["properties"].(map[string]any)
	for _, f := range []string{"id", "event", "invoice", "status", "amount", "currency", "paid_at", "okdesk_issue_id", "phone"} {
		if props[f] == nil {
			t.Errorf("OneCNotification lacks %s", f)
		}
	}
	for _, f := range []string{"id", "number", "date"} {
		if props["invoice"].(map[string]any)["properties"].(map[string]any)[f] == nil {
			t.Errorf("OneCNotification.invoice lacks %s", f)
		}
	}
	req, _ := json.Marshal(onec["required"])
	if string(req) != `["id","event","status"]` {
		t.Errorf("OneCNotification required = %s", req)
	}
	errSchema, _ := json.Marshal(schemas["Error"])
	if !strings.Contains(string(errSchema), `"required":["error"]`) {
		t.Errorf("Error schema: %s", errSchema)
	}
}

func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}

func TestDocsPage(t *testing.T) {
	e := newEnv(t)
	rec := e.do("GET", "/docs", nil)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("docs: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q", csp)
	}
	page := rec.Body.String()
	var routes []string
	for _, r := range e.srv.engine.Routes() {
		if isConsolePath(r.Path) {
			continue
		}
		routes = append(routes, r.Method+" "+regexp.MustCompile(`:([a-z]+)`).ReplaceAllString(r.Path, "{$1}"))
	}
	sort.Strings(routes)
	for _, r := range routes {
		if !strings.Contains(page, html.EscapeString(r)) {
			t.Errorf("docs page lacks %q", r)
		}
	}
	for _, want := range []string{"<!DOCTYPE html>", "OneCNotification", "okdesk_issue_id", "partially_paid", "X-Hub-Signature-256",
		`id="schema-DialogDetail"`, `href="#schema-WebhookAccepted"`, "<code>{&#34;error&#34;: &#34;message&#34;}</code>", "version test"} {
		if !strings.Contains(page, want) {
			t.Errorf("docs page lacks %q", want)
		}
	}
	for _, banned := range []string{"<script", "src=\"http", "href=\"http", "@import", "url("} {
		if strings.Contains(page, banned) {
			t.Errorf("docs page is not self-contained: has %q", banned)
		}
	}
}

func TestInlineMarkdownEscapes(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a `b` c", "a <code>b</code> c"},
		{"<script>`<b>`", "&lt;script&gt;<code>&lt;b&gt;</code>"},
		{"odd `tick", "odd <code>tick</code>"},
	}
	for _, tt := range tests {
		if got := string(inlineMarkdown(tt.in)); got != tt.want {
			t.Errorf("inlineMarkdown(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// isConsolePath reports whether a route is one of the console's HTML pages.
func isConsolePath(p string) bool {
	return p == consolePrefix || strings.HasPrefix(p, consolePrefix+"/")
}
