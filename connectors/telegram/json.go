package telegram

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// decodeObject decodes body, which must hold exactly one JSON object, keeping
// numbers as json.Number so that 64-bit ids survive exactly.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("body is not a JSON object")
	}
	return obj, nil
}

// plain converts a tree decoded with UseNumber into the plain types event.Data
// documents: json.Number becomes float64. A number too large for float64 (which
// JSON could not encode again as a number) is kept as its decimal text.
func plain(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return string(x)
		}
		return f
	default:
		return v
	}
}

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
