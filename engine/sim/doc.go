// Package sim is the test world: the processing core (engine/core) run one event
// at a time on a store in memory, a fake clock and mocked connectors, so that what
// a scenario shows about a flow is what the server does with it. The world holds no
// rules of its own; it chooses only the schedule: an inbound event is processed with
// everything it leads to, its step's actions are performed at once and in order,
// and their results are processed after the events already waiting.
//
// What the world brings:
//   - inbound events written as each system sends them (a WhatsApp webhook, a
//     Telegram update, an Okdesk webhook, a 1C notification) and read by that
//     connector's own parser (events.go);
//   - connectors without credentials: a message is built and checked by the real
//     WhatsApp or Telegram client (limits, the 24-hour window) and not sent; other
//     actions answer a documented default, or what a mock table says (mocks.go);
//   - a fake clock that fires due timers in order, each at its due time.
//
// On top of the world sit the operators' testing tools, each in its own package:
// scenario files run by `fixit test` (engine/scenario), the terminal simulator of
// `fixit chat` (engine/chat) and `fixit replay` (engine/replay). All are
// deterministic: the same input gives the same output. The world renders what it
// did as text (render.go) for all three.
package sim
