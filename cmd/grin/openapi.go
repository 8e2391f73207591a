package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"github.com/grin-ai/grin/platform/api"
)

// openapiCmd prints the OpenAPI document the server serves at
// /openapi.yaml (3.1), or huma's 3.0 downgrade for generators that do not
// read 3.1.
func openapiCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grin openapi", flag.ContinueOnError)
	fs.SetOutput(stderr)
	v30 := fs.Bool("3.0", false, "print the OpenAPI 3.0 downgrade")
	asJSON := fs.Bool("json", false, "print JSON instead of YAML")
	if err := fs.Parse(args); err != nil {
		return err
	}
	doc := api.Document()
	var b []byte
	var err error
	switch {
	case *v30 && *asJSON:
		b, err = doc.Downgrade()
	case *v30:
		b, err = doc.DowngradeYAML()
	case *asJSON:
		b, err = json.MarshalIndent(doc, "", "  ")
	default:
		b, err = doc.YAML()
	}
	if err != nil {
		return fmt.Errorf("render the document: %w", err)
	}
	_, err = stdout.Write(b)
	return err
}
