package waba

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testAppSecret = "fixit-dev-app-secret"

// fixtureSignatures are the X-Hub-Signature-256 headers of SIGNATURES.md.
var fixtureSignatures = map[string]string{
	"batch.json":                    "sha256=8242d560f0411cadb49bf16274ae64361fb0597ba331d447b6a4bbb0d4041455",
	"image.json":                    "sha256=6619d4be2f0a990228ba7330362677ddf437c5c0deae105694dd0ffc0a245407",
	"interactive_button_reply.json": "sha256=ae959d9103594c02c78c9cba659db5bc5312c74f3f58fece7f9535532afe85e0",
	"interactive_list_reply.json":   "sha256=572505cd169db2496e20d793b1572c77823fe25d7266870c6be6fbd68b79d873",
	"location.json":                 "sha256=b6d791faaf414a3f107fb34a6e9fc207f8ab37bbe62f90a96c9b4048fc85d191",
	"status_delivered.json":         "sha256=8d7e1465c8f03fab6788bd77d5a5b1a8f672d28393638aa9e57a8b5804db4bd9",
	"status_failed.json":            "sha256=c48eb982195fb79b8bf708c8ab3e09bbc9c26b4d6189d9edb09424915b4ce946",
	"template_button.json":          "sha256=5ac9aa554ae644b3bbfbe668c48e2043b8e3abb4fef5167109371ee585ada304",
	"text.json":                     "sha256=021d7f110df117708409c079584295c9f1d97caa7cccbe60bb39f8fec990c6d6",
}

func TestVerifySignatureFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/fixtures/*.json")
	if err != nil || len(files) != len(fixtureSignatures) {
		t.Fatalf("fixtures: %d files (err %v), %d signatures", len(files), err, len(fixtureSignatures))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			header, ok := fixtureSignatures[name]
			if !ok {
				t.Fatalf("no signature for %s", name)
			}
			if !VerifySignature([]byte(testAppSecret), body, header) {
				t.Fatal("valid signature rejected")
			}

			// Any change to the bytes breaks it, including re-encoding the same JSON
			// (Meta signs its own \uXXXX-escaped serialization).
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				t.Fatal(err)
			}
			reencoded, _ := json.Marshal(v)
			flipped := append([]byte(nil), body...)
			flipped[len(flipped)/2] ^= 1
			for what, b := range map[string][]byte{
				"re-encoded":       reencoded,
				"flipped bit":      flipped,
				"trailing newline": append(append([]byte(nil), body...), '\n'),
				"truncated":        body[:len(body)-1],
				"empty body":       nil,
				"leading space":    append([]byte(" "), body...),
			} {
				if VerifySignature([]byte(testAppSecret), b, header) {
					t.Errorf("%s body verified", what)
				}
			}
			for other, h := range fixtureSignatures {
				if other != name && VerifySignature([]byte(testAppSecret), body, h) {
					t.Errorf("signature of %s verified", other)
				}
			}
			if VerifySignature([]byte("wrong-secret"), body, header) {
				t.Error("wrong secret verified")
			}
		})
	}
}

func TestVerifySignatureHeaders(t *testing.T) {
	body := []byte("test")
	// Vector C of the reference (Meta's Node SDK): secret TEST_APP_SECRET, body "test".
	const secret = "TEST_APP_SECRET"
	const good = "sha256=0c61947b610d4f45e65f3d680e26027121ec2413e77598bcb6cfc6e0d9888221"
	cases := []struct {
		name   string
		secret string
		header string
		want   bool
	}{
		{"valid", secret, good, true},
		{"uppercase hex is the same digest", secret, "sha256=" + strings.ToUpper(good[7:]), true},
		{"empty header", secret, "", false},
		{"prefix only", secret, "sha256=", false},
		{"no prefix", secret, good[7:], false},
		{"sha1 prefix", secret, "sha1=" + good[7:], false},
		{"uppercase prefix", secret, "SHA256=" + good[7:], false},
		{"space after prefix", secret, "sha256= " + good[7:], false},
		{"trailing space", secret, good + " ", false},
		{"short", secret, good[:len(good)-2], false},
		{"long", secret, good + "00", false},
		{"odd length", secret, good[:len(good)-1], false},
		{"non-hex", secret, good[:len(good)-1] + "g", false},
		{"wrong digest", secret, "sha256=" + strings.Repeat("0", 64), false},
		{"empty secret", "", good, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := VerifySignature([]byte(c.secret), body, c.header); got != c.want {
				t.Errorf("VerifySignature = %v, want %v", got, c.want)
			}
		})
	}

	// Vector A of the reference: a real Meta delivery signed by pywa's test secret.
	const pywaBody = `{"object":"whatsapp_business_account","entry":[{"id":"264937493375603","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550953877","phone_number_id":"277321005464405"},"contacts":[{"profile":{"name":"PyWa Tests"},"wa_id":"972544401243"}],"messages":[{"from":"972544401243","id":"wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA","timestamp":"1730231903","text":{"body":"Hey there! I am using PyWa."},"type":"text"}]},"field":"messages"}]}]}`
	if !VerifySignature([]byte("1222e786b144d0e85b9f365372d93676"), []byte(pywaBody),
		"sha256=54edfa1d7259e0eb13c677cc7d73d1b5c86cfa12433d19156e058ab9251bc441") {
		t.Error("pywa vector rejected")
	}
}

func TestVerifyHandshake(t *testing.T) {
	const token = "meatyhamhock"
	cases := []struct {
		name  string
		token string
		query string
		want  string
		ok    bool
	}{
		{"valid", token, "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock", "1158201444", true},
		{"challenge echoed verbatim", token, "hub.mode=subscribe&hub.challenge=00x%2Fy&hub.verify_token=meatyhamhock", "00x/y", true},
		{"wrong token", token, "hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatyhamhocK", "", false},
		{"token prefix", token, "hub.mode=subscribe&hub.challenge=1&hub.verify_token=meaty", "", false},
		{"missing token", token, "hub.mode=subscribe&hub.challenge=1", "", false},
		{"wrong mode", token, "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meatyhamhock", "", false},
		{"missing mode", token, "hub.challenge=1&hub.verify_token=meatyhamhock", "", false},
		{"missing challenge", token, "hub.mode=subscribe&hub.verify_token=meatyhamhock", "", false},
		{"unset verify token", "", "hub.mode=subscribe&hub.challenge=1&hub.verify_token=", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := url.ParseQuery(c.query)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := VerifyHandshake(c.token, q)
			if got != c.want || ok != c.ok {
				t.Errorf("VerifyHandshake = (%q, %v), want (%q, %v)", got, ok, c.want, c.ok)
			}
		})
	}
}
