package onec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/dialog"

	"github.com/fixit-exchange/fixit/connectors"
)

const (
	odataRoot = "/base/odata/standard.odata"
	testUser  = "обмен_fixit" // Cyrillic logins are common in 1C
	testPass  = "p@ss:w0rd"
)

var testNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// seen is one request the fake 1C received.
type seen struct {
	RequestURI string
	Filter     string // $filter as the server decodes it
	Auth       string
	User, Pass string
	HasAuth    bool
	Accept     string
}

// fake1C is an httptest server in front of a 1C publication: it records requests
// and answers with reply.
type fake1C struct {
	*httptest.Server
	mu   sync.Mutex
	seen []seen
}

func newFake1C(t *testing.T, reply func(w http.ResponseWriter, r *http.Request)) *fake1C {
	t.Helper()
	f := &fake1C{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		f.mu.Lock()
		f.seen = append(f.seen, seen{RequestURI: r.RequestURI, Filter: r.URL.Query().Get("$filter"),
			Auth: r.Header.Get("Authorization"), User: u, Pass: p, HasAuth: ok, Accept: r.Header.Get("Accept")})
		f.mu.Unlock()
		reply(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake1C) Seen() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.seen...)
}

const invoicesJSON = `{
"odata.metadata": "http://srv/base/odata/standard.odata/$metadata#Document_СчетНаОплатуПокупателю",
"value": [{
"Ref_Key": "7f3c2a10-5b7e-11ef-9c3a-00155d012a0b",
"DataVersion": "AAAABAAAAAA=",
"DeletionMark": false,
"Number": "00БП-000412",
"Date": "2026-11-29T00:00:00",
"Posted": true,
"СуммаДокумента": 18500,
"Контрагент_Key": "b1c89d93-cb6a-11e6-aede-5404a6b4b8ed",
"Товары": [{"Ref_Key": "7f3c2a10-5b7e-11ef-9c3a-00155d012a0b", "LineNumber": "1", "Сумма": 18500}]
},{
"Ref_Key": "8a1d0c22-5b7e-11ef-9c3a-00155d012a0b",
"Number": "00БП-000413",
"Date": "2026-11-29T10:00:00",
"Posted": false,
"СуммаДокумента": 2400.5
}]}`

const counterpartyJSON = `{
"odata.metadata": "http://srv/base/odata/standard.odata/$metadata#Catalog_Контрагенты/@Element",
"Ref_Key": "b1c89d93-cb6a-11e6-aede-5404a6b4b8ed",
"Description": "ООО Ромашка",
"ИНН": "7701234567"
}`

func serveJSON(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		io.WriteString(w, body)
	}
}

func newClient(t *testing.T, base string) *Client {
	t.Helper()
	c, err := New(Config{BaseURL: base, User: testUser, Pass: testPass})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func readReq(params map[string]any) connectors.Request {
	return connectors.Request{ID: "out-7", Kind: ActionRead, Params: params, Now: testNow, Dialog: dialog.Dialog{ID: 7}}
}

func TestReadRequestShapes(t *testing.T) {
	const invoices = "Document_%D0%A1%D1%87%D0%B5%D1%82%D0%9D%D0%B0%D0%9E%D0%BF%D0%BB%D0%B0%D1%82%D1%83%D0%9F%D0%BE%D0%BA%D1%83%D0%BF%D0%B0%D1%82%D0%B5%D0%BB%D1%8E"
	filter := "Date ge datetime'2025-05-01T00:00:00' and Контрагент_Key eq guid'b1c89d93-cb6a-11e6-aede-5404a6b4b8ed'"
	cases := []struct {
		name   string
		params map[string]any
		uri    string
		filter string
	}{
		{
			name:   "object only",
			params: map[string]any{"object": "Document_СчетНаОплатуПокупателю"},
			uri:    odataRoot + "/" + invoices + "?$format=json",
		},
		{
			name: "every option, in a fixed order",
			params: map[string]any{
				"object":  "Document_СчетНаОплатуПокупателю",
				"expand":  "Контрагент",
				"top":     float64(200),
				"orderby": "Date desc",
				"select":  []any{"Ref_Key", "Number", "Date", "СуммаДокумента"},
				"filter":  filter,
			},
			uri: odataRoot + "/" + invoices + "?$format=json" +
				"&$filter=Date%20ge%20datetime%272025-05-01T00%3A00%3A00%27%20and%20%D0%9A%D0%BE%D0%BD%D1%82%D1%80%D0%B0%D0%B3%D0%B5%D0%BD%D1%82_Key%20eq%20guid%27b1c89d93-cb6a-11e6-aede-5404a6b4b8ed%27" +
				"&$select=Ref_Key%2CNumber%2CDate%2C%D0%A1%D1%83%D0%BC%D0%BC%D0%B0%D0%94%D0%BE%D0%BA%D1%83%D0%BC%D0%B5%D0%BD%D1%82%D0%B0" +
				"&$orderby=Date%20desc&$top=200" +
				"&$expand=%D0%9A%D0%BE%D0%BD%D1%82%D1%80%D0%B0%D0%B3%D0%B5%D0%BD%D1%82",
			filter: filter,
		},
		{
			name:   "plus and ampersand in a literal",
			params: map[string]any{"object": "Document_X", "filter": "substringof('a+b & c', Комментарий) eq true"},
			uri: odataRoot + "/Document_X?$format=json&$filter=" +
				"substringof%28%27a%2Bb%20%26%20c%27%2C%20%D0%9A%D0%BE%D0%BC%D0%BC%D0%B5%D0%BD%D1%82%D0%B0%D1%80%D0%B8%D0%B9%29%20eq%20true",
			filter: "substringof('a+b & c', Комментарий) eq true",
		},
		{
			name:   "top as a string, zero, and blank options",
			params: map[string]any{"object": "Catalog_X", "top": "0", "filter": " ", "select": []any{}},
			uri:    odataRoot + "/Catalog_X?$format=json&$top=0",
		},
		{
			name:   "navigation below an entity keeps OData punctuation",
			params: map[string]any{"object": "Document_X(guid'7f3c2a10-5b7e-11ef-9c3a-00155d012a0b')/Товары", "top": 5},
			uri:    odataRoot + "/Document_X(guid'7f3c2a10-5b7e-11ef-9c3a-00155d012a0b')/%D0%A2%D0%BE%D0%B2%D0%B0%D1%80%D1%8B?$format=json&$top=5",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFake1C(t, serveJSON(`{"odata.metadata":"m","value":[]}`))
			client := newClient(t, srv.URL+odataRoot+"/")
			if _, err := client.Execute(context.Background(), readReq(c.params)); err != nil {
				t.Fatalf("Execute: %v", err)
			}
			got := srv.Seen()
			if len(got) != 1 {
				t.Fatalf("%d requests, want 1", len(got))
			}
			if got[0].RequestURI != c.uri {
				t.Errorf("request URI\n got: %s\nwant: %s", got[0].RequestURI, c.uri)
			}
			if got[0].Filter != c.filter {
				t.Errorf("server decoded $filter %q, want %q", got[0].Filter, c.filter)
			}
			if got[0].Accept != "application/json" {
				t.Errorf("Accept = %q", got[0].Accept)
			}
		})
	}
}

func TestReadSingleEntity(t *testing.T) {
	srv := newFake1C(t, serveJSON(counterpartyJSON))
	client := newClient(t, srv.URL+odataRoot)
	res, err := client.Execute(context.Background(), readReq(map[string]any{
		"object": "Catalog_Контрагенты(guid'b1c89d93-cb6a-11e6-aede-5404a6b4b8ed')", "select": "Description,ИНН"}))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	wantURI := odataRoot + "/Catalog_%D0%9A%D0%BE%D0%BD%D1%82%D1%80%D0%B0%D0%B3%D0%B5%D0%BD%D1%82%D1%8B(guid'b1c89d93-cb6a-11e6-aede-5404a6b4b8ed')" +
		"?$format=json&$select=Description%2C%D0%98%D0%9D%D0%9D"
	if got := srv.Seen()[0].RequestURI; got != wantURI {
		t.Errorf("request URI\n got: %s\nwant: %s", got, wantURI)
	}
	want := map[string]any{"count": 1, "items": []any{map[string]any{
		"Ref_Key": "b1c89d93-cb6a-11e6-aede-5404a6b4b8ed", "Description": "ООО Ромашка", "ИНН": "7701234567"}}}
	if !reflect.DeepEqual(res.Data, want) || res.DryRun {
		t.Errorf("result = %#v\nwant Data %#v", res, want)
	}
}

func TestReadCollection(t *testing.T) {
	srv := newFake1C(t, serveJSON(invoicesJSON))
	client := newClient(t, srv.URL+odataRoot)
	res, err := client.Execute(context.Background(), readReq(map[string]any{"object": "Document_СчетНаОплатуПокупателю"}))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	items, _ := res.Data["items"].([]any)
	if res.Data["count"] != 2 || len(items) != 2 {
		t.Fatalf("result = %#v, want 2 items", res.Data)
	}
	first := items[0].(map[string]any)
	if first["Number"] != "00БП-000412" || first["СуммаДокумента"] != float64(18500) || first["Posted"] != true {
		t.Errorf("first item = %#v", first)
	}
	if rows, _ := first["Товары"].([]any); len(rows) != 1 {
		t.Errorf("tabular part lost: %#v", first["Товары"])
	}
}

func TestReadAuth(t *testing.T) {
	srv := newFake1C(t, serveJSON(`{"value":[]}`))
	client := newClient(t, srv.URL+odataRoot)
	if _, err := client.Execute(context.Background(), readReq(map[string]any{"object": "Catalog_X"})); err != nil {
		t.Fatal(err)
	}
	anon, err := New(Config{BaseURL: srv.URL + odataRoot})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Execute(context.Background(), readReq(map[string]any{"object": "Catalog_X"})); err != nil {
		t.Fatal(err)
	}
	got := srv.Seen()
	if !got[0].HasAuth || got[0].User != testUser || got[0].Pass != testPass || !strings.HasPrefix(got[0].Auth, "Basic ") {
		t.Errorf("auth = %+v, want Basic %s:%s", got[0], testUser, testPass)
	}
	if got[1].Auth != "" {
		t.Errorf("Authorization sent without a user: %q", got[1].Auth)
	}
}

func TestReadErrors(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		code       string
		retryable  bool
		retryAfter time.Duration
		apiCode    int
		mention    string
	}{
		{
			name: "entity not found", status: 404,
			body: `{"odata.error": {"code": "9", "message": {"lang": "ru", "value": "Экземпляр сущности не найден"}}}`,
			code: connectors.CodeNotFound, apiCode: 9, mention: "Экземпляр сущности не найден (1c error code 9)",
		},
		{
			name: "bad filter", status: 400,
			body: `{"odata.error":{"code":"6","message":{"lang":"ru","value":"Неправильное выражение в параметре $filter"}}}`,
			code: connectors.CodeBadRequest, apiCode: 6, mention: "Неправильное выражение",
		},
		{
			name: "not published", status: 400,
			body: `{"odata.error":{"code":14,"message":{"lang":"ru","value":"Не найден сегмент ресурса 'Document_Y'"}}}`,
			code: connectors.CodeBadRequest, apiCode: 14, mention: "Document_Y",
		},
		{
			name: "wrong password", status: 401, header: map[string]string{"WWW-Authenticate": `Basic realm="1C"`},
			code: connectors.CodeAuth, mention: "Unauthorized",
		},
		{
			name: "no rights", status: 403,
			body: `{"odata.error":{"code":"-1","message":{"lang":"ru","value":"Недостаточно прав для выполнения операции"}}}`,
			code: connectors.CodeAuth, apiCode: -1, mention: "Недостаточно прав",
		},
		{
			name: "internal error as XML", status: 500,
			body: `<?xml version="1.0" encoding="utf-8"?><m:error xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"><m:code>-1</m:code><m:message xml:lang="ru">Ошибка выполнения запроса</m:message></m:error>`,
			code: connectors.CodeServer, retryable: true, apiCode: -1, mention: "Ошибка выполнения запроса",
		},
		{
			name: "licence busy", status: 503, header: map[string]string{"Retry-After": "120"}, body: `<html>Service Unavailable</html>`,
			code: connectors.CodeServer, retryable: true, retryAfter: 2 * time.Minute, mention: "Service Unavailable",
		},
		{
			name: "HTML instead of OData", status: 200, body: `<html><body>Apache default page</body></html>`,
			code: CodeBadResponse, mention: "not an OData JSON object",
		},
		{
			name: "JSON without value", status: 200, body: `{"odata.metadata":"x"}`,
			code: CodeBadResponse, mention: `no "value" list`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newFake1C(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			client := newClient(t, srv.URL+odataRoot)
			_, err := client.Execute(context.Background(), readReq(map[string]any{"object": "Document_X"}))
			e, ok := errors.AsType[*connectors.Error](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *connectors.Error", err, err)
			}
			if e.Connector != "onec" || e.Code != c.code || e.Retryable != c.retryable || e.RetryAfter != c.retryAfter ||
				e.Status != c.status || e.APICode != c.apiCode {
				t.Errorf("err = %+v, want code %s retryable %v retry-after %v status %d api code %d",
					e, c.code, c.retryable, c.retryAfter, c.status, c.apiCode)
			}
			if !strings.Contains(e.Error(), c.mention) || !strings.Contains(e.Error(), "Document_X") {
				t.Errorf("error %q does not mention %q and the object", e.Error(), c.mention)
			}
			if strings.Contains(e.Error(), testPass) {
				t.Errorf("error leaks the password: %q", e.Error())
			}
		})
	}
}

func TestReadNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL + odataRoot
	srv.Close()
	client := newClient(t, base)
	_, err := client.Execute(context.Background(), readReq(map[string]any{"object": "Document_X"}))
	e, ok := errors.AsType[*connectors.Error](err)
	if !ok || e.Code != connectors.CodeNetwork || !e.Retryable {
		t.Fatalf("err = %v, want retryable %s", err, connectors.CodeNetwork)
	}
	if strings.Contains(e.Error(), testPass) {
		t.Errorf("error leaks the password: %q", e.Error())
	}
}

func TestReadBadParams(t *testing.T) {
	cases := []struct {
		name    string
		params  map[string]any
		mention string
	}{
		{"no object", map[string]any{"filter": "x"}, "object"},
		{"blank object", map[string]any{"object": "  "}, "object"},
		{"object is a number", map[string]any{"object": 5}, "object"},
		{"query in object", map[string]any{"object": "Document_X?$top=1"}, "'?'"},
		{"fragment in object", map[string]any{"object": "Document_X#a"}, "'#'"},
		{"escaped object", map[string]any{"object": "Document_%D0%A1"}, "'%'"},
		{"parent segment", map[string]any{"object": "../hs/api/run"}, "'..'"},
		{"leading slash", map[string]any{"object": "/Document_X"}, "segments"},
		{"control character", map[string]any{"object": "Document_\tX"}, "control"},
		{"negative top", map[string]any{"object": "Document_X", "top": -1}, "top"},
		{"fractional top", map[string]any{"object": "Document_X", "top": 1.5}, "top"},
		{"word top", map[string]any{"object": "Document_X", "top": "all"}, "top"},
		{"bool top", map[string]any{"object": "Document_X", "top": true}, "top"},
		{"filter is a list", map[string]any{"object": "Document_X", "filter": []any{"a"}}, "filter"},
		{"select holds a number", map[string]any{"object": "Document_X", "select": []any{"Number", 3}}, "select[1]"},
		{"expand is a map", map[string]any{"object": "Document_X", "expand": map[string]any{}}, "expand"},
	}
	srv := newFake1C(t, serveJSON(`{"value":[]}`))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, base := range []string{srv.URL + odataRoot, ""} { // dry-run validates too
				client := newClient(t, base)
				_, err := client.Execute(context.Background(), readReq(c.params))
				e, ok := errors.AsType[*connectors.Error](err)
				if !ok || e.Code != connectors.CodeBadParams || e.Retryable {
					t.Fatalf("base %q: err = %v, want non-retryable %s", base, err, connectors.CodeBadParams)
				}
				if !strings.Contains(e.Error(), c.mention) {
					t.Errorf("error %q does not mention %q", e.Error(), c.mention)
				}
			}
		})
	}
	if n := len(srv.Seen()); n != 0 {
		t.Errorf("%d requests made for unusable params", n)
	}
}

func TestReadDryRun(t *testing.T) {
	var logs bytes.Buffer
	client, err := New(Config{User: testUser, Pass: testPass, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Execute(context.Background(), readReq(map[string]any{"object": "Document_X", "filter": "Posted eq true", "top": 3}))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	want := map[string]any{"dry_run": true, "request": "GET Document_X?$format=json&$filter=Posted%20eq%20true&$top=3", "items": []any{}, "count": 0}
	if !res.DryRun || !reflect.DeepEqual(res.Data, want) {
		t.Errorf("result = %#v, want dry run %#v", res, want)
	}
	if !strings.Contains(logs.String(), "dry-run") || strings.Contains(logs.String(), testPass) {
		t.Errorf("dry-run log = %s", logs.String())
	}
}

func TestNewValidatesBaseURL(t *testing.T) {
	for _, base := range []string{"srv/base/odata/standard.odata", "ftp://srv/odata", "http://", "http://srv/odata?x=1", "http://user:" + testPass + "@srv/odata"} {
		_, err := New(Config{BaseURL: base})
		if err == nil {
			t.Errorf("New(%q) accepted a bad base URL", base)
			continue
		}
		if strings.Contains(err.Error(), testPass) {
			t.Errorf("New(%q) error leaks the password: %v", base, err)
		}
	}
}

func TestUnsupportedKind(t *testing.T) {
	client := newClient(t, "")
	_, err := client.Execute(context.Background(), connectors.Request{Kind: "onec.write"})
	if e, ok := errors.AsType[*connectors.Error](err); !ok || e.Code != connectors.CodeUnsupported {
		t.Fatalf("err = %v, want %s", err, connectors.CodeUnsupported)
	}
	reg := connectors.NewRegistry()
	if err := reg.Register(client); err != nil || !reflect.DeepEqual(reg.Kinds(), []string{"onec.read"}) {
		t.Errorf("Register = %v, kinds %q", err, reg.Kinds())
	}
}

// FuzzReadQuery checks that any object and filter that pass validation come out of
// the encoder as a URL that a server decodes back to exactly what was given.
func FuzzReadQuery(f *testing.F) {
	f.Add("Document_СчетНаОплатуПокупателю", "Date ge datetime'2025-05-01T00:00:00' and Posted eq true")
	f.Add("Catalog_Контрагенты(guid'b1c89d93-cb6a-11e6-aede-5404a6b4b8ed')", "substringof('a+b & c=d', Комментарий) eq true")
	f.Add("Document_X(guid'7f3c2a10-5b7e-11ef-9c3a-00155d012a0b')/Товары", "Сумма gt 100 and Ключ eq 'x;y/z?#%'")
	f.Fuzz(func(t *testing.T, object, filter string) {
		q, err := parseRead(map[string]any{"object": object, "filter": filter})
		if err != nil {
			if _, ok := errors.AsType[*connectors.Error](err); !ok {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		u, err := url.Parse("http://srv" + odataRoot + "/" + q.pathAndQuery())
		if err != nil {
			t.Fatalf("encoded target does not parse: %v", err)
		}
		if want := odataRoot + "/" + strings.TrimSpace(object); u.Path != want {
			t.Fatalf("path decodes to %q, want %q", u.Path, want)
		}
		vals := u.Query()
		if vals.Get("$format") != "json" || vals.Get("$filter") != strings.TrimSpace(filter) {
			t.Fatalf("query decodes to %v, want $filter %q", vals, strings.TrimSpace(filter))
		}
		if strings.ContainsAny(u.RawQuery, " +") {
			t.Fatalf("raw query %q has a literal space or plus", u.RawQuery)
		}
	})
}
