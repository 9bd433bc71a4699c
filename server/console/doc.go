// Package console holds the parts of the operators' console that do not need the
// HTTP server: the session store (with each session's CSRF value), the texts in
// English and Russian, the layered layout of a flow's state diagram, the dialog
// view (the conversation as a thread, the history as a trace) and the embedded
// templates, style sheet, script and vendored htmx.
//
// The server package serves the pages: it owns the routes, the sign-in, the roles
// and the operations every button calls, the same ones the admin API calls.
package console
