package event

import "testing"

func TestNormalizePhone(t *testing.T) {
	cases := []struct{ in, want string }{
		{"+7 916 123-45-67", "79161234567"},
		{"+7 (916) 123-45-67", "79161234567"},
		{"8 916 123 45 67", "79161234567"},
		{"9161234567", "79161234567"},
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
	if OkdeskIssueKey("1542") != "okdesk:issue:1542" || WABAKey("7") != "waba:7" || TelegramKey("5") != "telegram:5" || OneCInvoiceKey("i") != "onec:invoice:i" {
		t.Error("key builders disagree with DESIGN A6")
	}
}
