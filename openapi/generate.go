// Package openapi holds grin's committed API documents and the clients
// generated from them. Refresh everything with
//
//	go generate ./openapi/...
//
// A test fails when a committed document differs from what the server
// serves, and CI fails when a regenerated client differs from the
// committed one.
package openapi

//go:generate sh -c "go run ../cmd/grin openapi > openapi.yaml"
//go:generate sh -c "go run ../cmd/grin openapi -3.0 > openapi-3.0.yaml"
//go:generate go tool oapi-codegen -config client/config.yaml openapi-3.0.yaml
//go:generate sh -c "if [ -d ts/node_modules ]; then cd ts && npx --no-install openapi-typescript ../openapi.yaml -o schema.d.ts; else echo 'openapi: TypeScript client not regenerated: run npm ci in openapi/ts first'; fi"
