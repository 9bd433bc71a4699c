package okdesk

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/fixit-exchange/fixit/connectors"
)

// phoneVariants lists the forms a phone is searched under, best first. Okdesk matches
// the stored string exactly, and operators type Russian numbers as +7…, 8… or 7…, so
// those are tried in turn (reference §1.4.5).
func phoneVariants(digits string) []string {
	v := []string{"+" + digits}
	if len(digits) == 11 && digits[0] == '7' {
		v = append(v, "8"+digits[1:], digits)
	}
	return v
}

// findContact searches a contact by phone (E.164 digits). found is false when Okdesk
// answers 404 or an empty body/object/list for every variant.
func (c *Client) findContact(ctx context.Context, x *exchange, digits string) (id string, found bool, err error) {
	for _, phone := range phoneVariants(digits) {
		v, err := x.do(ctx, http.MethodGet, "/contacts/", url.Values{"phone": {phone}}, nil)
		if isStatus(err, http.StatusNotFound) {
			continue
		}
		if err != nil {
			return "", false, fmt.Errorf("find contact by phone: %w", err)
		}
		if id := contactID(v); id != "" {
			return id, true, nil
		}
	}
	return "", false, nil
}

// contactID reads the id of the contact search answer: one contact object (the
// observed shape) or, defensively, a list whose first element is one.
func contactID(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return idString(x["id"])
	case []any:
		if len(x) > 0 {
			return contactID(x[0])
		}
	}
	return ""
}

// createContact creates a contact and returns its id.
func (c *Client) createContact(ctx context.Context, x *exchange, digits, first, last string) (string, error) {
	contact := map[string]any{"first_name": first, "phone": "+" + digits}
	if last != "" {
		contact["last_name"] = last
	}
	v, err := x.do(ctx, http.MethodPost, "/contacts/", nil, map[string]any{"contact": contact})
	if err != nil {
		return "", fmt.Errorf("create contact: %w", err)
	}
	id := answerID(v)
	if id == "" {
		return "", &connectors.Error{Connector: Connector, Code: CodeBadResponse, Message: "create contact: the answer has no id"}
	}
	return id, nil
}

// findOrCreateContact finds the contact by phone and creates it when missing.
func (c *Client) findOrCreateContact(ctx context.Context, x *exchange, digits, first, last string) (id string, created bool, err error) {
	id, found, err := c.findContact(ctx, x, digits)
	if err != nil || found {
		return id, false, err
	}
	id, err = c.createContact(ctx, x, digits, first, last)
	return id, err == nil, err
}

// contactNames splits a display name into Okdesk's first and last name. Without a name
// the phone stands in for the first name, so the contact is still recognisable.
func contactNames(p map[string]any, digits string) (first, last string, err error) {
	if first, err = stringParam(p, "first_name"); err != nil {
		return "", "", err
	}
	if last, err = stringParam(p, "last_name"); err != nil {
		return "", "", err
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	if first == "" {
		name, err := stringParam(p, "name")
		if err != nil {
			return "", "", err
		}
		if f := strings.Fields(name); len(f) > 0 {
			first = f[0]
			if last == "" {
				last = strings.Join(f[1:], " ")
			}
		}
	}
	if first == "" {
		first = "+" + digits
	}
	return first, last, nil
}

func (c *Client) findContactAction(ctx context.Context, x *exchange, p map[string]any) (map[string]any, error) {
	digits, err := requiredPhone(p)
	if err != nil {
		return nil, err
	}
	id, found, err := c.findContact(ctx, x, digits)
	if err != nil {
		return nil, err
	}
	return map[string]any{"found": found, "contact_id": id}, nil
}

func (c *Client) createContactAction(ctx context.Context, x *exchange, p map[string]any) (map[string]any, error) {
	digits, err := requiredPhone(p)
	if err != nil {
		return nil, err
	}
	first, err := requiredString(p, "first_name")
	if err != nil {
		return nil, err
	}
	last, err := stringParam(p, "last_name")
	if err != nil {
		return nil, err
	}
	id, err := c.createContact(ctx, x, digits, strings.TrimSpace(first), strings.TrimSpace(last))
	if err != nil {
		return nil, err
	}
	return map[string]any{"contact_id": id}, nil
}

func (c *Client) findOrCreateContactAction(ctx context.Context, x *exchange, p map[string]any) (map[string]any, error) {
	digits, err := requiredPhone(p)
	if err != nil {
		return nil, err
	}
	first, last, err := contactNames(p, digits)
	if err != nil {
		return nil, err
	}
	id, created, err := c.findOrCreateContact(ctx, x, digits, first, last)
	if err != nil {
		return nil, err
	}
	return map[string]any{"contact_id": id, "created": created}, nil
}

func (c *Client) createIssueAction(ctx context.Context, x *exchange, p map[string]any) (map[string]any, error) {
	title, err := requiredString(p, "title")
	if err != nil {
		return nil, err
	}
	issue := map[string]any{"title": strings.TrimSpace(title)}
	files, err := filesParam(p)
	if err != nil {
		return nil, err
	}
	d, err := stringParam(p, "description")
	if err != nil {
		return nil, err
	}
	// The reference names the outbox action that created the issue, so a retry
	// after an unknown outcome (a timeout, a crash) finds it instead of creating a
	// second one; it also leads an engineer from the issue to fixit's admin API.
	ref := issueRef(x.outbox)
	if ref != "" {
		d = strings.TrimRight(d, "\n") + "\n\n" + ref
	}
	if d != "" {
		issue["description"] = strings.TrimLeft(d, "\n")
	}
	for _, name := range []string{"type", "priority"} {
		code, err := codeParam(p, name)
		if err != nil {
			return nil, err
		}
		if code != "" {
			issue[name] = code
		}
	}
	companyID, err := idParam(p, "company_id")
	if err != nil {
		return nil, err
	}
	if companyID != "" {
		issue["company_id"] = companyID
	}
	if v, ok := p["custom_parameters"]; ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, badParam("custom_parameters", fmt.Sprintf("want a map of attribute code → value, got %T", v))
		}
		issue["custom_parameters"] = m
	}

	contactID, err := idParam(p, "contact_id")
	if err != nil {
		return nil, err
	}
	digits, err := phoneParam(p, "phone")
	if err != nil {
		return nil, err
	}
	created := false
	if contactID == "" && digits != "" {
		first, last, err := contactNames(p, digits)
		if err != nil {
			return nil, err
		}
		if contactID, created, err = c.findOrCreateContact(ctx, x, digits, first, last); err != nil {
			return nil, fmt.Errorf("create issue: %w", err)
		}
	}
	if contactID != "" {
		issue["contact_id"] = contactID
	}
	if x.attempt > 1 && ref != "" && contactID != "" && !c.DryRun() {
		id, err := c.findIssueByRef(ctx, x, contactID, ref)
		if err != nil {
			return nil, fmt.Errorf("create issue: look for the issue of an earlier try: %w", err)
		}
		if id != "" {
			return map[string]any{"id": id, "issue_id": id, "contact_id": contactID, "contact_created": created, "reused": true}, nil
		}
	}

	var attach []formFile
	for i, f := range files {
		attach = append(attach, formFile{field: fmt.Sprintf("issue[files_attributes][%d][attachment]", i), file: f})
	}
	v, err := x.doForm(ctx, http.MethodPost, "/issues/", map[string]any{"issue": issue}, attach)
	if err != nil {
		return nil, fmt.Errorf("create issue: %w", err)
	}
	id := answerID(v)
	if id == "" {
		return nil, &connectors.Error{Connector: Connector, Code: CodeBadResponse, Message: "create issue: the answer has no id"}
	}
	return map[string]any{"id": id, "issue_id": id, "contact_id": contactID, "contact_created": created}, nil
}

// issueRef is the reference a created issue carries: "fixit #<outbox id>".
func issueRef(outboxID string) string {
	if outboxID == "" {
		return ""
	}
	return "fixit #" + outboxID
}

// findIssueByRef looks through the contact's newest issues for one whose
// description carries ref, and returns its id or "".
func (c *Client) findIssueByRef(ctx context.Context, x *exchange, contactID, ref string) (string, error) {
	q := url.Values{"contact_ids[]": {contactID}, "sorting[field]": {"created_at"}, "sorting[direction]": {"reverse"},
		"page[size]": {"20"}, "page[number]": {"1"}}
	v, err := x.do(ctx, http.MethodGet, "/issues/list", q, nil)
	if err != nil {
		return "", err
	}
	list, _ := v.([]any)
	for _, item := range list {
		issue, _ := item.(map[string]any)
		if desc, _ := issue["description"].(string); strings.Contains(desc, ref) && endsRef(desc, ref) {
			return idString(issue["id"]), nil
		}
	}
	return "", nil
}

// endsRef reports whether ref appears as a whole reference in desc ("fixit #12"
// must not match "fixit #123"). Okdesk may return the description as HTML.
func endsRef(desc, ref string) bool {
	for i := strings.Index(desc, ref); i >= 0; {
		end := i + len(ref)
		if end == len(desc) || desc[end] < '0' || desc[end] > '9' {
			return true
		}
		j := strings.Index(desc[end:], ref)
		if j < 0 {
			return false
		}
		i = end + j
	}
	return false
}

func (c *Client) commentAction(ctx context.Context, x *exchange, p map[string]any) (map[string]any, error) {
	issueID, err := requiredID(p, "issue_id")
	if err != nil {
		return nil, err
	}
	content, err := requiredString(p, "content")
	if err != nil {
		return nil, err
	}
	format, err := stringParam(p, "format")
	if err != nil {
		return nil, err
	}
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "", "text":
		content = textToHTML(content)
	case "html":
	default:
		return nil, badParam("format", `want "text" or "html"`)
	}
	public, err := boolParam(p, "public", true)
	if err != nil {
		return nil, err
	}
	comment := map[string]any{"content": content, "public": public}
	authorID, err := idParam(p, "author_id")
	if err != nil {
		return nil, err
	}
	if authorID == "" {
		authorID = c.authorID
	}
	if authorID != "" {
		n, _ := strconv.ParseInt(authorID, 10, 64) // idParam checked it; the API types author_id as integer
		comment["author_id"] = n
	}
	authorType, err := stringParam(p, "author_type")
	if err != nil {
		return nil, err
	}
	switch authorType = strings.TrimSpace(authorType); authorType {
	case "":
	case "employee", "contact":
		comment["author_type"] = authorType
	default:
		return nil, badParam("author_type", `want "employee" or "contact"`)
	}
	files, err := filesParam(p)
	if err != nil {
		return nil, err
	}
	var attach []formFile
	for i, f := range files {
		attach = append(attach, formFile{field: fmt.Sprintf("comment[attachments_attributes][%d][file]", i), file: f})
	}
	v, err := x.doForm(ctx, http.MethodPost, "/issues/"+issueID+"/comments", map[string]any{"comment": comment}, attach)
	if err != nil {
		return nil, fmt.Errorf("comment on issue %s: %w", issueID, err)
	}
	id := answerID(v)
	if id == "" {
		return nil, &connectors.Error{Connector: Connector, Code: CodeBadResponse,
			Message: fmt.Sprintf("comment on issue %s: the answer has no id", issueID)}
	}
	return map[string]any{"id": id, "issue_id": issueID}, nil
}

// textToHTML escapes plain text for Okdesk's HTML comment field and turns line breaks
// into <br/>, which Okdesk needs to show them. Customer text is never sent as markup.
func textToHTML(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.ReplaceAll(html.EscapeString(s), "\n", "<br/>")
}

func (c *Client) changeStatusAction(ctx context.Context, x *exchange, p map[string]any) (map[string]any, error) {
	issueID, err := requiredID(p, "issue_id")
	if err != nil {
		return nil, err
	}
	code, err := codeParam(p, "status")
	if err != nil {
		return nil, err
	}
	if code == "" {
		return nil, badParam("status", "required")
	}
	body := map[string]any{"code": code}
	comment, err := stringParam(p, "comment")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(comment) != "" {
		body["comment"] = comment
		if _, ok := p["comment_public"]; ok {
			public, err := boolParam(p, "comment_public", false)
			if err != nil {
				return nil, err
			}
			body["comment_public"] = public
		}
	}
	delayTo, err := stringParam(p, "delay_to")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(delayTo) != "" {
		body["delay_to"] = strings.TrimSpace(delayTo)
	}
	skip, err := boolParam(p, "skip_webhooks", false)
	if err != nil {
		return nil, err
	}
	if skip {
		body["skip_options"] = []any{"skip_webhooks"}
	}
	// The status endpoint takes the fields unwrapped (reference §1.4.3).
	if _, err := x.do(ctx, http.MethodPost, "/issues/"+issueID+"/statuses", nil, body); err != nil {
		return nil, fmt.Errorf("change status of issue %s: %w", issueID, err)
	}
	return map[string]any{"issue_id": issueID, "status": code}, nil
}

func (c *Client) getIssueAction(ctx context.Context, x *exchange, p map[string]any) (map[string]any, error) {
	issueID, err := requiredID(p, "issue_id")
	if err != nil {
		return nil, err
	}
	v, err := x.do(ctx, http.MethodGet, "/issues/"+issueID, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("get issue %s: %w", issueID, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, &connectors.Error{Connector: Connector, Code: CodeBadResponse,
			Message: fmt.Sprintf("get issue %s: the answer is not an object", issueID)}
	}
	return issueData(m)
}

// issueData flattens a REST issue for flows: numbers become float64, ids strings, and
// status, priority and type their codes (their names go to *_name).
func issueData(m map[string]any) (map[string]any, error) {
	ids := map[string]string{"id": idString(m["id"])}
	if c, ok := m["contact"].(map[string]any); ok {
		ids["contact_id"] = idString(c["id"])
	}
	for _, k := range []string{"company_id", "group_id", "parent_id", "service_object_id"} {
		if _, ok := m[k]; ok {
			ids[k] = idString(m[k])
		}
	}
	plain, err := plainJSON(m)
	if err != nil {
		return nil, &connectors.Error{Connector: Connector, Code: CodeBadResponse, Message: fmt.Sprintf("get issue: %v", err)}
	}
	data := plain.(map[string]any)
	for k, v := range ids {
		data[k] = v
	}
	data["issue_id"] = ids["id"]
	for _, k := range []string{"status", "old_status", "priority", "type"} {
		obj, ok := data[k].(map[string]any)
		if !ok {
			continue
		}
		code, _ := obj["code"].(string)
		data[k] = code
		if name, ok := obj["name"].(string); ok {
			data[k+"_name"] = name
		}
	}
	if r, ok := data["rate"].(map[string]any); ok { // REST: {"id": 3, "value": "normal"}; webhooks: "normal"
		data["rate"] = r["value"]
	}
	return data, nil
}

// requiredPhone reads the "phone" parameter, which must be a usable phone number.
func requiredPhone(p map[string]any) (string, error) {
	digits, err := phoneParam(p, "phone")
	if err == nil && digits == "" {
		err = badParam("phone", "required")
	}
	return digits, err
}

// answerID reads the "id" of a created object; "" when there is none.
func answerID(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	return idString(m["id"])
}

// isStatus reports whether err is an Okdesk HTTP error with the given status.
func isStatus(err error, status int) bool {
	e := connectors.AsError(Connector, err)
	return e != nil && e.Status == status
}

var _ connectors.Executor = (*Client)(nil)
