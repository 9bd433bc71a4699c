package engine

import (
	"encoding/json"
	"path/filepath"
)

// SARIF renders diagnostics as a SARIF 2.1.0 log, the format CI code scanning
// (GitHub, GitLab) reads: one rule per diagnostic code, one result per
// diagnostic with its range. version is fixit's.
func SARIF(ds Diagnostics, version string) ([]byte, error) {
	type (
		text struct {
			Text string `json:"text"`
		}
		artifact struct {
			URI string `json:"uri"`
		}
		physical struct {
			ArtifactLocation artifact       `json:"artifactLocation"`
			Region           map[string]int `json:"region"`
		}
		location struct {
			PhysicalLocation physical `json:"physicalLocation"`
		}
		result struct {
			RuleID    string     `json:"ruleId"`
			RuleIndex int        `json:"ruleIndex"`
			Level     string     `json:"level"`
			Message   text       `json:"message"`
			Locations []location `json:"locations"`
		}
		rule struct {
			ID                   string            `json:"id"`
			ShortDescription     text              `json:"shortDescription"`
			Help                 text              `json:"help"`
			DefaultConfiguration map[string]string `json:"defaultConfiguration"`
		}
	)
	rules := make([]rule, len(Codes))
	index := map[string]int{}
	for i, c := range Codes {
		rules[i] = rule{ID: c.Name, ShortDescription: text{c.Summary}, Help: text{c.Hint},
			DefaultConfiguration: map[string]string{"level": string(c.Severity)}}
		index[c.Name] = i
	}
	results := make([]result, 0, len(ds))
	for _, d := range ds {
		msg := d.Message
		if d.Hint != "" {
			msg += "\nhint: " + d.Hint
		}
		_, end := d.Range()
		reg := map[string]int{"startLine": d.Line, "startColumn": d.Col, "endLine": end.Line, "endColumn": end.Col}
		results = append(results, result{RuleID: d.Code, RuleIndex: index[d.Code], Level: string(d.Severity), Message: text{msg},
			Locations: []location{{PhysicalLocation: physical{ArtifactLocation: artifact{URI: filepath.ToSlash(d.File)}, Region: reg}}}})
	}
	log := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "fixit", "version": version, "informationUri": "https://github.com/fixit-exchange/fixit",
				"rules": rules,
			}},
			"results": results,
		}},
	}
	return json.MarshalIndent(log, "", "  ")
}
