package event

import "testing"

func TestNormalizePhone(t *testing.T) {
	cases := []struct{ in, want string }{
		{"+7 916 123-45-67", "79161234567"},
		{"+7 (916) 123-45-67", "79161234567"},
		{"8 916 123 45 67", "79161234567"},
		{"(916) 123-45-67", "79161234567"},
		{"9161234567", "9161234567"},
		{"89161234567", "89161234567"},
		{"84912345678", "84912345678"},
		{"+9001234567", "9001234567"},
		{"79161234567", "79161234567"},
		{"0049 30 1234567", "49301234567"},
		{"+44 20 7946 0958", "442079460958"},
		{"12345", ""},
		{"", ""},
		{"not a phone", ""},
		{"+1234567890123456", ""},
	}
	for _, c := range cases {
		if got := NormalizePhone(c.in); got != c.want {
			t.Errorf("NormalizePhone(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalizePhoneIdempotent(t *testing.T) {
	for _, in := range []string{"+7 916 123-45-67", "8 916 123 45 67", "+9001234567", "(916) 123-45-67", "0049 30 1234567", "84912345678"} {
		once := NormalizePhone(in)
		if twice := NormalizePhone(once); twice != once {
			t.Errorf("NormalizePhone(%q) = %q but normalizing again gives %q", in, once, twice)
		}
	}
}

func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{"+7 916 123-45-67", "8 916 123 45 67", "00 44 20", "", "+"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := NormalizePhone(s)
		if p != "" && (len(p) < 7 || len(p) > 15 || NormalizePhone(p) != p) {
			t.Errorf("NormalizePhone(%q) = %q: not canonical", s, p)
		}
	})
}

func TestKeys(t *testing.T) {
	if got := PhoneKey("+7 916 123-45-67"); got != "phone:79161234567" {
		t.Errorf("PhoneKey = %q", got)
	}
	if got := PhoneKey("x"); got != "" {
		t.Errorf("PhoneKey(x) = %q, want empty", got)
	}
	keys := AddKey(AddKey(AddKey(nil, "a"), "a"), "")
	if len(keys) != 1 {
		t.Errorf("AddKey kept duplicates or empties: %v", keys)
	}
	if OkdeskIssueKey("1542") != "okdesk:issue:1542" || WABAKey("100", "7") != "waba:100:7" || TelegramKey("5") != "telegram:5" || OneCInvoiceKey("i") != "onec:invoice:i" {
		t.Error("key builders disagree with the documented key formats")
	}
}
