package engine

import (
	"encoding/json"
	"sort"
)

// SchemaID is the $id of the generated JSON Schema.
const SchemaID = "https://github.com/fixit-exchange/fixit/docs/flow.schema.json"

type obj = map[string]any

// JSONSchema returns the JSON Schema (draft 2020-12) of a flow file, generated from
// the same spec and catalog the loader checks against. Channel limits are left to
// the loader (they depend on the channel a flow talks on) and named in the
// descriptions.
func JSONSchema(c *Catalog) ([]byte, error) {
	eventEnum := eventTypeNames()
	eventType := obj{"type": "string", "description": "An event type.", "anyOf": []any{
		obj{"enum": eventEnum},
		obj{"pattern": `^(okdesk|onec|telegram)\.[A-Za-z][A-Za-z0-9_]*$`},
	}}
	eventTypes := obj{"oneOf": []any{eventType, obj{"type": "array", "items": eventType}}}
	duration := obj{"type": "string", "pattern": `^([0-9]+d)?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))*$`, "description": "A duration: 90s, 15m, 24h, 2d, 1h30m."}
	name := obj{"type": "string", "pattern": `^[A-Za-z][A-Za-z0-9_]*$`}

	defs := obj{}
	actionRefs := []any{}
	actionProps := obj{}
	for _, a := range c.Actions() {
		params := obj{}
		var required []string
		for _, p := range a.Params {
			params[p.Name] = fieldSchema(p, eventTypes, duration)
			if p.Required {
				required = append(required, p.Name)
			}
		}
		full := obj{"type": "object", "properties": params, "additionalProperties": false}
		if len(required) > 0 {
			full["required"] = required
		}
		val := any(full)
		if a.Shorthand != "" {
			val = obj{"oneOf": []any{obj{"type": "string", "description": "Shorthand for " + a.Shorthand + "."}, full}}
		}
		defName := "action_" + a.Name
		defs[defName] = val
		actionProps[a.Name] = obj{"$ref": "#/$defs/" + defName, "description": a.Doc}
		actionRefs = append(actionRefs, obj{"type": "object", "required": []string{a.Name},
			"properties": obj{a.Name: obj{"$ref": "#/$defs/" + defName}}, "additionalProperties": false,
			"description": a.Doc})
	}
	defs["action"] = obj{"oneOf": actionRefs}
	defs["actions"] = obj{"oneOf": []any{obj{"$ref": "#/$defs/action"}, obj{"type": "array", "items": obj{"$ref": "#/$defs/action"}}}}

	branchProps := obj{}
	for _, f := range BranchSpec.Fields {
		branchProps[f.Name] = fieldSchema(f, eventTypes, duration)
	}
	branchProps["do"] = obj{"$ref": "#/$defs/actions", "description": fieldDoc(BranchSpec, "do")}
	branchProps["set"] = obj{"type": "object", "description": fieldDoc(BranchSpec, "set"), "additionalProperties": obj{"type": []string{"string", "number", "boolean"}}}
	for k, v := range actionProps {
		branchProps[k] = v
	}
	defs["branch"] = obj{"type": "object", "properties": branchProps, "additionalProperties": false}
	defs["branches"] = obj{"oneOf": []any{obj{"$ref": "#/$defs/branch"}, obj{"type": "array", "items": obj{"$ref": "#/$defs/branch"}}}}
	timerProps := obj{"in": duration}
	for k, v := range branchProps {
		timerProps[k] = v
	}
	defs["timer"] = obj{"type": "object", "properties": timerProps, "required": []string{"in"}, "additionalProperties": false}

	stateProps := obj{}
	for _, f := range StateSpec.Fields {
		stateProps[f.Name] = fieldSchema(f, eventTypes, duration)
	}
	stateProps["enter"] = obj{"$ref": "#/$defs/actions", "description": fieldDoc(StateSpec, "enter")}
	onProps := obj{}
	for _, e := range EventTypes {
		if e.Name != "timer" {
			onProps[e.Name] = obj{"$ref": "#/$defs/branches", "description": e.Doc}
		}
	}
	stateProps["on"] = obj{"type": "object", "description": fieldDoc(StateSpec, "on"), "properties": onProps,
		"additionalProperties": obj{"$ref": "#/$defs/branches"}}
	stateProps["always"] = obj{"type": "array", "items": obj{"$ref": "#/$defs/branch"}, "description": fieldDoc(StateSpec, "always")}
	stateProps["after"] = obj{"description": fieldDoc(StateSpec, "after"), "oneOf": []any{
		obj{"type": "object", "additionalProperties": obj{"oneOf": []any{name, obj{"$ref": "#/$defs/branch"}}}},
		obj{"type": "array", "items": obj{"$ref": "#/$defs/timer"}},
	}}
	defs["state"] = obj{"oneOf": []any{obj{"type": "null"}, obj{"type": "object", "properties": stateProps, "additionalProperties": false}}}

	top := obj{}
	for _, f := range FlowSpec.Fields {
		top[f.Name] = fieldSchema(f, eventTypes, duration)
	}
	top["flow"] = withDoc(name, fieldDoc(FlowSpec, "flow"))
	top["initial"] = withDoc(name, fieldDoc(FlowSpec, "initial"))
	top["start"] = obj{"description": fieldDoc(FlowSpec, "start"), "oneOf": []any{eventTypes, obj{"type": "object",
		"properties": obj{"on": eventTypes, "when": obj{"type": "string", "description": fieldDoc(StartSpec, "when")}},
		"required":   []string{"on"}, "additionalProperties": false}}}
	top["vars"] = obj{"type": "object", "description": fieldDoc(FlowSpec, "vars"), "propertyNames": name}
	top["migrate"] = obj{"type": []string{"object", "null"}, "description": fieldDoc(FlowSpec, "migrate"), "additionalProperties": name}
	top["states"] = obj{"type": "object", "description": fieldDoc(FlowSpec, "states"), "propertyNames": name,
		"additionalProperties": obj{"$ref": "#/$defs/state"}, "minProperties": 1}
	var required []string
	for _, f := range FlowSpec.Fields {
		if f.Required {
			required = append(required, f.Name)
		}
	}
	sort.Strings(required)
	schema := obj{
		"$schema":              "https://json-schema.org/draft/2020-12/schema",
		"$id":                  SchemaID,
		"title":                "fixit flow",
		"description":          FlowSpec.Doc,
		"type":                 "object",
		"properties":           top,
		"required":             required,
		"additionalProperties": false,
		"patternProperties":    obj{"^x-": obj{"description": "Ignored by fixit: a place for what YAML anchors name."}},
		"$defs":                defs,
	}
	return json.MarshalIndent(schema, "", "  ")
}

func fieldDoc(o Object, name string) string {
	f, _ := o.field(name)
	return f.Doc
}

func withDoc(s obj, doc string) obj {
	out := obj{}
	for k, v := range s {
		out[k] = v
	}
	out["description"] = doc
	return out
}

func fieldSchema(f Field, eventTypes, duration obj) obj {
	var s obj
	switch f.Type {
	case TString, TTemplate, TExpr, TGuard, TState:
		s = obj{"type": "string"}
		if len(f.Enum) > 0 {
			s["enum"] = f.Enum
		}
	case TInt:
		s = obj{"oneOf": []any{obj{"type": "integer"}, obj{"type": "string", "pattern": `\$\{`}}}
	case TBool:
		s = obj{"oneOf": []any{obj{"type": "boolean"}, obj{"type": "string", "pattern": `\$\{`}}}
	case TDuration:
		s = withDoc(duration, "")
	case TEventTypes:
		s = withDoc(eventTypes, "")
	case TTemplates:
		s = obj{"type": "object", "additionalProperties": obj{"type": "string"}}
	case TButtons:
		s = obj{"type": "array", "items": obj{"oneOf": []any{
			obj{"type": "string"},
			obj{"type": "object", "required": []string{"id", "title"}, "additionalProperties": false,
				"properties": obj{"id": obj{"type": "string"}, "title": obj{"type": "string"}}},
		}}}
	case TList:
		s = obj{"type": "object", "required": []string{"button", "rows"}, "additionalProperties": false, "properties": obj{
			"button":  obj{"type": "string"},
			"section": obj{"type": "string"},
			"rows": obj{"type": "array", "items": obj{"oneOf": []any{
				obj{"type": "string"},
				obj{"type": "object", "required": []string{"id", "title"}, "additionalProperties": false, "properties": obj{
					"id": obj{"type": "string"}, "title": obj{"type": "string"},
					"description": obj{"type": "string"}}},
			}}},
		}}
	case TWATemplate:
		s = obj{"type": "object", "required": []string{"name"}, "additionalProperties": false, "properties": obj{
			"name": obj{"type": "string"}, "language": obj{"type": "string"},
			"params": obj{"type": "array", "items": obj{"type": "string"}}}}
	case TFile:
		s = obj{"type": "string"}
	case TFiles:
		s = obj{"oneOf": []any{obj{"type": "array", "items": obj{"type": "string"}}, obj{"type": "string", "pattern": `\$\{`}}}
	default:
		s = obj{}
	}
	if f.Doc != "" {
		s["description"] = f.Doc
	}
	return s
}
