// Command fakegraph is a local stand-in for the WhatsApp Cloud (Graph) API used by
// the end-to-end part of `make bench`.
//
// POST {base}/{phone-number-id}/messages counts the message and answers Graph's
// success shape; GET /replies streams one line per message received (the
// recipient's wa_id), for bench/loadgen -walk to pace each dialog; GET /stats
// answers {"messages":N}. It listens on loopback only.
package main
