// Package chat is `fixit chat`: a conversation with a flow in the terminal. What
// the operator types is delivered as a customer's message to the test world
// (engine/sim), which runs the server's own processing core on a fake clock;
// commands starting with "/" move the clock, complete or fail the pending actions,
// send an Okdesk or 1C event, and show the dialog. The same input gives the same
// transcript, which the tests keep as a golden file.
package chat
