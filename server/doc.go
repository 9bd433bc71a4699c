// Package server is fixit's HTTP layer: the gin router with its own
// middleware (request id, access log, recovery), the four webhook endpoints, the admin
// API under /api/v1, health and readiness probes, the Prometheus endpoint and the
// OpenAPI document with its HTML rendering.
//
// Handlers are thin: they verify, parse with the connector packages, store through an
// Inbox and answer. A webhook answers 200 only after Inbox.Append has returned, so an
// acknowledged event is durable; processing happens elsewhere. There is no SQL and no
// flow logic here.
//
// Secrets are compared in constant time and never written to logs, errors or answers;
// the access log carries the method, the path without its query string, the status,
// the duration, the size and the request id, never a header value or a body.
package server
