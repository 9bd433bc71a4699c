// Package httpcall performs the generic "http" action: a flow calls any HTTP(S) endpoint
// and gets the answer back as the data of its action.done event.
//
// Parameters (all evaluated by the engine before they get here):
//
//	url      required; an absolute http:// or https:// URL
//	method   optional; GET, or POST when a body is given
//	headers  optional map of header name → value
//	query    optional map of name → value (or list of values), added to the URL's query
//	body     optional; a map or list is sent as JSON with Content-Type application/json,
//	         a string as it is (Content-Type text/plain unless headers set one)
//	timeout  optional duration string ("10s", "1m") or number of seconds; default 10s, at most 2m
//
// A 2xx answer gives Result.Data:
//
//	status   int           the HTTP status
//	body     any           the decoded JSON when Content-Type is JSON, else the text
//	headers  map[string]any  the first value of each response header
//	truncated bool         present and true when the body was cut at 1 MiB
//
// With Config.DryRun the call is checked and recorded, not made.
//
// Any other status is a *connectors.Error made by connectors.HTTPError: 429 and 5xx are
// retryable (with the server's Retry-After), other 4xx not. Its message holds the
// method, the URL without its query string, and the start of the response body (at
// most 512 bytes).
//
// Secrets: the values of request headers named Authorization, Proxy-Authorization or
// Cookie, or whose name contains "token", "secret", "key", "password", "passwd", "auth"
// or "signature", of query parameters with such names and of a password in the URL are
// never logged and are replaced with "[redacted]" wherever they would appear in an error
// message, including a response body that echoes them. Logs carry only the method, host,
// path and status; messages carry the URL without its query string.
package httpcall
