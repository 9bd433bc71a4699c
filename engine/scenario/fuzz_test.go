package scenario

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// FuzzParseScenarios feeds the scenario parser arbitrary bytes: it must not panic,
// must return either scenarios or errors, and must place every problem in the file.
func FuzzParseScenarios(f *testing.F) {
	for _, name := range []string{"testdata/fuzz_seed_simple_lead_test.yaml", "testdata/failing_test.yaml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("scenarios:\n  - name: x\n    steps:\n      - advance: 1d\n      - mock: { send: { fail: { code: x, status: 500 } } }\n"))
	f.Add([]byte("scenarios: &a [*a]\n"))
	f.Add([]byte("scenarios:\n  - name: x\n    steps:\n      - whatsapp: hi\n        expect: { sent: [{ template: t, params: [1] }], vars: { a: [1, {b: c}] } }\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan bool)
		go func() {
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				panic(fmt.Sprintf("HANG on %q", data))
			}
		}()
		defer close(done)
		sf, diags := ParseScenarios("fuzz_test.yaml", data)
		if (sf == nil) != diags.HasErrors() {
			t.Fatalf("file %v with diagnostics %v", sf != nil, diags)
		}
		for _, d := range diags {
			if d.Line < 1 || d.Col < 1 || d.Code == "" || d.Message == "" {
				t.Fatalf("diagnostic without a place or a code: %+v", d)
			}
		}
		if sf != nil {
			for _, sc := range sf.Scenarios {
				for _, st := range sc.Steps {
					if st.in == nil || st.Kind == "" || st.Pos.Line < 1 {
						t.Fatalf("step without input or place: %+v", st)
					}
				}
			}
		}
	})
}
