package okdesk

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/fixit-exchange/fixit/connectors"
	"github.com/fixit-exchange/fixit/engine/event"
)

// badParam is the non-retryable error of an unusable action parameter.
func badParam(name, reason string) *connectors.Error {
	return &connectors.Error{
		Connector: Connector,
		Code:      connectors.CodeBadParams,
		Message:   fmt.Sprintf("param %q: %s", name, reason),
	}
}

// stringParam reads an optional string parameter; numbers are accepted and formatted.
// It returns "" when the parameter is absent or null.
func stringParam(p map[string]any, name string) (string, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return "", nil
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", badParam(name, "not a finite number")
		}
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case json.Number:
		return string(x), nil
	default:
		return "", badParam(name, fmt.Sprintf("want a string, got %T", v))
	}
}

// requiredString reads a string parameter that must be present and not blank.
func requiredString(p map[string]any, name string) (string, error) {
	s, err := stringParam(p, name)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", badParam(name, "required")
	}
	return s, nil
}

// idParam reads an optional Okdesk id: a positive integer given as a number or a string
// of digits ("1542" or 1542). It returns "" when absent or blank.
func idParam(p map[string]any, name string) (string, error) {
	s, err := stringParam(p, name)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	n, err := strconv.ParseUint(s, 10, 63)
	if err != nil || n == 0 {
		return "", badParam(name, fmt.Sprintf("want a positive integer id, got %.40q", s))
	}
	return strconv.FormatUint(n, 10), nil
}

// requiredID reads an Okdesk id that must be present.
func requiredID(p map[string]any, name string) (string, error) {
	id, err := idParam(p, name)
	if err == nil && id == "" {
		err = badParam(name, "required")
	}
	return id, err
}

// boolParam reads an optional boolean: a bool, "true"/"false"/"1"/"0"/"yes"/"no", or 0/1.
func boolParam(p map[string]any, name string, def bool) (bool, error) {
	v, ok := p[name]
	if !ok || v == nil {
		return def, nil
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "":
			return def, nil
		case "true", "1", "yes":
			return true, nil
		case "false", "0", "no":
			return false, nil
		}
	case float64:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	case int:
		if x == 0 || x == 1 {
			return x == 1, nil
		}
	}
	return false, badParam(name, fmt.Sprintf("want a boolean, got %v", v))
}

// codeParam reads an optional Okdesk code (status, type, priority): letters, digits,
// '_' and '-', as the codes of custom statuses like "Allow_auto" are.
func codeParam(p map[string]any, name string) (string, error) {
	s, err := stringParam(p, name)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if len(s) > 100 {
		return "", badParam(name, "too long for a code")
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return "", badParam(name, fmt.Sprintf("%.40q is not a code (letters, digits, '_' and '-')", s))
		}
	}
	return s, nil
}

// phoneParam reads an optional phone number and returns its E.164 digits; an unusable
// non-blank value is an error.
func phoneParam(p map[string]any, name string) (string, error) {
	s, err := stringParam(p, name)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	d := event.NormalizePhone(s)
	if d == "" {
		return "", badParam(name, "not a phone number")
	}
	return d, nil
}
