package server

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
)

// openAPISource is the hand-written OpenAPI 3.1 document of every endpoint. A test
// checks that it lists exactly the routes registered in gin.
//
//go:embed openapi.json
var openAPISource []byte

//go:embed docs.html.tmpl
var docsTemplateSource string

// docsCSP keeps the docs page self-contained: no scripts, no external anything.
const docsCSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// apiDocs holds the OpenAPI document and its HTML page, both built once in New.
type apiDocs struct {
	json []byte
	page []byte
}

func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/json; charset=utf-8", s.docs.json)
}

func (s *Server) docsPage(c *gin.Context) {
	c.Header("Content-Security-Policy", docsCSP)
	c.Data(http.StatusOK, "text/html; charset=utf-8", s.docs.page)
}

// loadDocs parses the embedded document, stamps version into info.version (when
// set) and renders the HTML page.
func loadDocs(version string) (*apiDocs, error) {
	var doc oaDoc
	if err := json.Unmarshal(openAPISource, &doc); err != nil {
		return nil, fmt.Errorf("parse embedded openapi.json: %w", err)
	}
	out := openAPISource
	if version != "" {
		doc.Info.Version = version
		var generic map[string]any
		if err := json.Unmarshal(openAPISource, &generic); err != nil {
			return nil, fmt.Errorf("parse embedded openapi.json: %w", err)
		}
		if info, ok := generic["info"].(map[string]any); ok {
			info["version"] = version
		}
		b, err := json.MarshalIndent(generic, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode openapi.json: %w", err)
		}
		out = append(b, '\n')
	}
	tmpl, err := template.New("docs").Funcs(template.FuncMap{"md": inlineMarkdown, "lower": strings.ToLower}).Parse(docsTemplateSource)
	if err != nil {
		return nil, fmt.Errorf("parse docs template: %w", err)
	}
	var page bytes.Buffer
	if err := tmpl.Execute(&page, doc.view()); err != nil {
		return nil, fmt.Errorf("render docs page: %w", err)
	}
	return &apiDocs{json: out, page: page.Bytes()}, nil
}

// ---- the parts of OpenAPI 3.1 that the page shows ----

type oaDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Tags []struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	} `json:"tags"`
	Paths      map[string]map[string]oaOperation `json:"paths"`
	Components struct {
		Schemas         map[string]*oaSchema   `json:"schemas"`
		Parameters      map[string]oaParameter `json:"parameters"`
		Responses       map[string]oaResponse  `json:"responses"`
		SecuritySchemes map[string]struct {
			Type        string `json:"type"`
			Scheme      string `json:"scheme"`
			In          string `json:"in"`
			Name        string `json:"name"`
			Description string `json:"description"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

type oaOperation struct {
	Tags        []string              `json:"tags"`
	OperationID string                `json:"operationId"`
	Summary     string                `json:"summary"`
	Description string                `json:"description"`
	Parameters  []oaParameter         `json:"parameters"`
	RequestBody *oaBody               `json:"requestBody"`
	Responses   map[string]oaResponse `json:"responses"`
	Security    []map[string][]string `json:"security"`
}

type oaParameter struct {
	Ref         string    `json:"$ref"`
	Name        string    `json:"name"`
	In          string    `json:"in"`
	Description string    `json:"description"`
	Required    bool      `json:"required"`
	Schema      *oaSchema `json:"schema"`
}

type oaMedia struct {
	Schema *oaSchema `json:"schema"`
}

type oaBody struct {
	Description string             `json:"description"`
	Required    bool               `json:"required"`
	Content     map[string]oaMedia `json:"content"`
}

type oaResponse struct {
	Ref         string             `json:"$ref"`
	Description string             `json:"description"`
	Content     map[string]oaMedia `json:"content"`
	Headers     map[string]struct {
		Description string `json:"description"`
	} `json:"headers"`
}

type oaSchema struct {
	Ref         string               `json:"$ref"`
	Type        any                  `json:"type"` // a name or a list of names (3.1)
	Format      string               `json:"format"`
	Description string               `json:"description"`
	Properties  map[string]*oaSchema `json:"properties"`
	Required    []string             `json:"required"`
	Items       *oaSchema            `json:"items"`
	Enum        []any                `json:"enum"`
	AllOf       []*oaSchema          `json:"allOf"`
}

// ---- the page's view model ----

type docView struct {
	Title, Version, Description string
	Sections                    []sectionView
	Schemes                     []schemeView
	Schemas                     []schemaView
}

type sectionView struct {
	Name, Description string
	Ops               []opView
}

type opView struct {
	Anchor, Method, Path, Summary, Description string
	Security                                   []string
	Params                                     []paramView
	Body                                       *bodyView
	Responses                                  []responseView
}

type paramView struct {
	Name, In, Type, Description string
	Required                    bool
}

type bodyView struct {
	ContentType string
	Type        typeView
	Rows        []rowView
}

type responseView struct {
	Status, Description, ContentType string
	Type                             typeView
	Headers                          []string
}

type typeView struct {
	Text   string
	Anchor string // a component schema to link to, or ""
}

type rowView struct {
	Name        string
	Depth       int
	Type        typeView
	Required    bool
	Description string
}

type schemeView struct {
	Name, Kind, Description string
}

type schemaView struct {
	Name, Anchor, Description string
	Type                      typeView
	Rows                      []rowView
}

var methodOrder = []string{"get", "head", "post", "put", "patch", "delete", "options"}

func (d *oaDoc) view() docView {
	v := docView{Title: d.Info.Title, Version: d.Info.Version, Description: d.Info.Description}
	byTag := map[string]*sectionView{}
	for _, t := range d.Tags {
		v.Sections = append(v.Sections, sectionView{Name: t.Name, Description: t.Description})
	}
	for i := range v.Sections {
		byTag[v.Sections[i].Name] = &v.Sections[i]
	}
	paths := make([]string, 0, len(d.Paths))
	for p := range d.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		for _, m := range methodOrder {
			op, ok := d.Paths[p][m]
			if !ok {
				continue
			}
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			sec := byTag[tag]
			if sec == nil {
				v.Sections = append(v.Sections, sectionView{Name: tag})
				for i := range v.Sections {
					byTag[v.Sections[i].Name] = &v.Sections[i]
				}
				sec = byTag[tag]
			}
			sec.Ops = append(sec.Ops, d.opView(m, p, op))
		}
	}
	names := sortedKeys(d.Components.SecuritySchemes)
	for _, n := range names {
		s := d.Components.SecuritySchemes[n]
		kind := s.Type
		switch {
		case s.Scheme != "":
			kind = "HTTP " + s.Scheme
		case s.In != "":
			kind = "API key in " + s.In + " " + s.Name
		}
		v.Schemes = append(v.Schemes, schemeView{Name: n, Kind: kind, Description: s.Description})
	}
	for _, n := range sortedKeys(d.Components.Schemas) {
		s := d.Components.Schemas[n]
		v.Schemas = append(v.Schemas, schemaView{Name: n, Anchor: "schema-" + n, Description: s.Description,
			Type: schemaType(s), Rows: schemaRows(s, 0)})
	}
	return v
}

func (d *oaDoc) opView(method, path string, op oaOperation) opView {
	o := opView{
		Anchor: "op-" + method + "-" + anchorize(path), Method: strings.ToUpper(method), Path: path,
		Summary: op.Summary, Description: op.Description,
	}
	for _, req := range op.Security {
		o.Security = append(o.Security, sortedKeys(req)...)
	}
	for _, p := range op.Parameters {
		if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
			p = d.Components.Parameters[name]
		}
		o.Params = append(o.Params, paramView{Name: p.Name, In: p.In, Type: schemaType(p.Schema).Text,
			Description: p.Description, Required: p.Required})
	}
	if b := op.RequestBody; b != nil {
		if ct, ok := firstKey(b.Content); ok {
			s := b.Content[ct].Schema
			o.Body = &bodyView{ContentType: ct, Type: schemaType(s), Rows: schemaRows(s, 0)}
		}
	}
	for _, st := range sortedKeys(op.Responses) {
		r := op.Responses[st]
		if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
			r = d.Components.Responses[name]
		}
		rv := responseView{Status: st, Description: r.Description}
		if ct, ok := firstKey(r.Content); ok {
			rv.ContentType, rv.Type = ct, schemaType(r.Content[ct].Schema)
		}
		rv.Headers = sortedKeys(r.Headers)
		o.Responses = append(o.Responses, rv)
	}
	return o
}

// schemaRows flattens a schema's properties (and those of inline objects below them)
// into table rows; referenced component schemas are linked, not expanded.
func schemaRows(s *oaSchema, depth int) []rowView {
	if s == nil || s.Ref != "" || depth > 6 {
		return nil
	}
	var rows []rowView
	for _, part := range s.AllOf {
		rows = append(rows, schemaRows(part, depth)...)
	}
	target := s
	if s.Items != nil && len(s.Properties) == 0 {
		target = s.Items
		if target.Ref != "" {
			return rows
		}
	}
	for _, name := range sortedKeys(target.Properties) {
		p := target.Properties[name]
		rows = append(rows, rowView{Name: name, Depth: depth, Type: schemaType(p),
			Required: slices.Contains(target.Required, name), Description: describe(p)})
		rows = append(rows, schemaRows(p, depth+1)...)
	}
	return rows
}

// describe is a property's description plus its allowed values.
func describe(s *oaSchema) string {
	d := s.Description
	if len(s.Enum) > 0 {
		vals := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			vals[i] = fmt.Sprintf("`%v`", e)
		}
		if d != "" {
			d += " "
		}
		d += "One of " + strings.Join(vals, ", ") + "."
	}
	return d
}

// schemaType names a schema's type for the page: "string (date-time)", "array of
// Dialog", a link to a component, "string | integer".
func schemaType(s *oaSchema) typeView {
	if s == nil {
		return typeView{Text: "any"}
	}
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		return typeView{Text: name, Anchor: "schema-" + name}
	}
	if len(s.AllOf) > 0 {
		parts := make([]string, 0, len(s.AllOf))
		for _, p := range s.AllOf {
			parts = append(parts, schemaType(p).Text)
		}
		return typeView{Text: strings.Join(parts, " + ")}
	}
	var t string
	switch x := s.Type.(type) {
	case string:
		t = x
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			parts = append(parts, fmt.Sprint(p))
		}
		t = strings.Join(parts, " | ")
	default:
		t = "any"
	}
	if t == "array" && s.Items != nil {
		it := schemaType(s.Items)
		return typeView{Text: "array of " + it.Text, Anchor: it.Anchor}
	}
	if s.Format != "" {
		t += " (" + s.Format + ")"
	}
	return typeView{Text: t}
}

// inlineMarkdown escapes text and renders `code` spans, the only markup the document
// uses in its descriptions.
func inlineMarkdown(s string) template.HTML {
	var b strings.Builder
	for i, part := range strings.Split(s, "`") {
		if i%2 == 1 {
			b.WriteString("<code>" + html.EscapeString(part) + "</code>")
		} else {
			b.WriteString(html.EscapeString(part))
		}
	}
	return template.HTML(b.String()) // every part is escaped above
}

func anchorize(path string) string {
	r := strings.NewReplacer("/", "-", "{", "", "}", "", ".", "-")
	return strings.Trim(r.Replace(path), "-")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// firstKey is the first of m's keys in sorted order.
func firstKey[V any](m map[string]V) (string, bool) {
	keys := sortedKeys(m)
	if len(keys) == 0 {
		return "", false
	}
	return keys[0], true
}
