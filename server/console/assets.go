package console

import (
	"embed"
	"io/fs"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// Templates returns the console's page templates: layout.html and parts.html
// are shared by every page; each other file is one page.
func Templates() fs.FS { return templates }

// Static returns the console's static files (style sheet, script, the vendored
// htmx with its licences), rooted at the static folder.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("console: " + err.Error()) // the folder is embedded: cannot happen
	}
	return sub
}
