package connectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// DecodeObject decodes a webhook body that must hold exactly one JSON object,
// keeping numbers as json.Number so that 64-bit ids survive exactly.
func DecodeObject(body []byte) (map[string]any, error) {
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

// PlainNumbers converts a tree decoded by DecodeObject into the plain types
// event.Data documents: json.Number becomes float64. A number too large for float64
// (which JSON could not encode again as a number) is kept as its decimal text.
func PlainNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = PlainNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = PlainNumbers(e)
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

// Object reads decoded JSON as an object, leniently: any other value reads as nil.
func Object(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// List reads decoded JSON as a list, leniently: any other value reads as nil.
func List(v any) []any {
	l, _ := v.([]any)
	return l
}
