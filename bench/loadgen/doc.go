// Command loadgen is the closed-loop load generator of `make bench`.
//
// It posts signed WhatsApp Cloud API text webhooks to a loopback target from N
// concurrent keep-alive connections, each connection sending its next request as
// soon as the previous one is answered. Every body is built and signed before the
// clock starts: a unique wamid, the current timestamp, a contact out of K. It
// reports acknowledged (HTTP 200) deliveries per second, p50/p90/p99 latency and
// the failures by status as one plain-text table row.
//
// With -walk S it plays S steps of a dialog for each of the K contacts instead:
// it subscribes to the reply stream of bench/fakegraph (-replies) and sends a
// contact's next message only when the reply to its previous one has reached the
// fake Graph API, and reports dialog steps (replies) per second.
//
// Only loopback targets are accepted: this tool must never load a real server.
package main
