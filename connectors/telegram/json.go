package telegram

import (
	"encoding/json"
	"strconv"
	"strings"
)

// object returns m[key] when it is a JSON object.
func object(m map[string]any, key string) map[string]any {
	o, _ := m[key].(map[string]any)
	return o
}

// str returns m[key] when it is a JSON string.
func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// integer returns m[key] as a canonical decimal string when it is a JSON integer
// that fits in int64.
func integer(m map[string]any, key string) (string, bool) {
	i, ok := int64Field(m, key)
	if !ok {
		return "", false
	}
	return strconv.FormatInt(i, 10), true
}

// int64Field returns m[key] when it is a JSON integer that fits in int64.
func int64Field(m map[string]any, key string) (int64, bool) {
	n, ok := m[key].(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// fullName joins a Telegram user's or chat's first and last name.
func fullName(m map[string]any) string {
	return strings.TrimSpace(str(m, "first_name") + " " + str(m, "last_name"))
}
