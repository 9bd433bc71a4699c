package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fixit-exchange/fixit/engine/event"
)

// BenchmarkGuard measures one compiled guard evaluation (target < 300 ns/op).
func BenchmarkGuard(b *testing.B) {
	f := mustFlow(b, leadFlow)
	g := f.States["ask_name"].On["waba.message"][0].when
	m := NewMachine()
	env := &Env{Event: *waText("Анна"), Vars: copyVars(f.Vars), Now: t0}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := m.vm.Run(g, env)
		if err != nil || out != true {
			b.Fatalf("guard: %v %v", out, err)
		}
	}
}

// BenchmarkStep measures a full interpreter step of the reference flow without I/O:
// a name arrives, two guards run, two vars are set, the next state is entered and
// its templated message rendered (target < 20 µs/op).
func BenchmarkStep(b *testing.B) {
	data, err := os.ReadFile("../flows.d/simple_lead_flow.yaml")
	if err != nil {
		b.Fatal(err)
	}
	f := mustFlow(b, string(data))
	m := NewMachine()
	d := m.Start(f, 1, waText("Здравствуйте"), t0).Dialog
	e := waText("Анна Смирнова")
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := m.Step(f, d, e, now)
		if r.Err != nil || r.Dialog.State != "ask_problem" {
			b.Fatalf("step: %v %s", r.Err, r.Dialog.State)
		}
	}
}

// BenchmarkStartFlow measures choosing the flow an event starts.
func BenchmarkStartFlow(b *testing.B) {
	fs, diags := testLoader.Load("../flows.d")
	if fs == nil {
		b.Fatal(diags)
	}
	m := NewMachine()
	e := &event.Event{Type: "waba.message", Text: "hi", Data: map[string]any{}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if f, _ := m.StartFlow(fs, e, t0); f == nil {
			b.Fatal("no flow")
		}
	}
}

// BenchmarkLoad1000 reads, parses, checks and compiles a folder of 1,000 flow files,
// as `fixit validate` and every reload do (target < 2 s/op). The files are the
// reference flow under 1,000 names, each starting on its own keyword.
func BenchmarkLoad1000(b *testing.B) {
	src, err := os.ReadFile("../flows.d/simple_lead_flow.yaml")
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	for i := range 1000 {
		text := strings.Replace(string(src), "flow: simple_lead\n", fmt.Sprintf("flow: lead_%04d\n", i), 1)
		text = strings.Replace(text, "start:\n  on: waba.message\n",
			fmt.Sprintf("start:\n  on: waba.message\n  when: event.text == \"lead %d\"\n", i), 1)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("lead_%04d.yaml", i)), []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		fs, diags := testLoader.Load(dir)
		if fs == nil || fs.Len() != 1000 || diags.HasErrors() {
			b.Fatalf("loaded %v flows; diagnostics: %v", fs, diags)
		}
	}
}
