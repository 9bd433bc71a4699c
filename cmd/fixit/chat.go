package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/fixit-exchange/fixit/engine"
	"github.com/fixit-exchange/fixit/engine/chat"
	"github.com/fixit-exchange/fixit/engine/sim"
)

// runChat is `fixit chat [--flows DIR] [--channel waba|telegram] FLOW`.
func runChat(args []string, stdout, stderr io.Writer) int {
	return chatMain(args, os.Stdin, stdout, stderr)
}

func chatMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flagSet("chat", stderr)
	flows := fs.String("flows", envOr("FIXIT_FLOWS", "flows.d"), "flow folder (FLOW is a flow name in it) — or give FLOW as a file")
	var opt chat.Options
	fs.StringVar(&opt.Channel, "channel", "waba", "the customer's channel: waba or telegram")
	fs.StringVar(&opt.Contact.Phone, "phone", "+79161234567", "the WhatsApp customer's phone")
	fs.StringVar(&opt.Contact.Name, "name", "Анна", "the customer's name")
	fs.StringVar(&opt.Chat.ChatID, "chat-id", "512345678", "the Telegram customer's chat id")
	start := fs.String("start", sim.DefaultStartText, "the fake clock's start (RFC 3339)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "usage: fixit chat [--flows DIR] [--channel waba|telegram] FLOW")
		return 2
	}
	t, err := time.Parse(time.RFC3339, *start)
	if err != nil {
		fmt.Fprintf(stderr, "fixit chat: --start %q is not an RFC 3339 time\n", *start)
		return 2
	}
	opt.Start, opt.Chat.Name = t, opt.Contact.Name
	opt.Env = engine.FlowEnv(os.Environ())
	name, src := pos[0], *flows
	if st, err := os.Stat(name); err == nil && !st.IsDir() {
		src, name = pos[0], ""
	}
	loader, err := offlineLoader()
	if err != nil {
		fmt.Fprintf(stderr, "fixit chat: %v\n", err)
		return 1
	}
	opt.Loader = loader
	set, diags := loader.Load(src)
	if set == nil {
		for _, d := range diags {
			fmt.Fprintln(stderr, d.String())
		}
		return 1
	}
	if name == "" {
		if fl := set.Flows(); len(fl) > 0 {
			name = fl[0].Name
		}
	}
	opt.Flow = set.Flow(name)
	if opt.Flow == nil {
		fmt.Fprintf(stderr, "fixit chat: no flow %q in %s\n", name, src)
		return 1
	}
	if err := chat.Run(stdin, stdout, opt); err != nil {
		fmt.Fprintf(stderr, "fixit chat: %v\n", err)
		return 1
	}
	return 0
}
