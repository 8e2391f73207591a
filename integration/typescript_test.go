package integration

import (
	"os"
	"os/exec"
	"testing"
)

// TestTypeScriptClient type-checks the TypeScript client generated from the
// committed document and runs its Node test against the built binary.
// Without Node or `npm ci` in openapi/ts it skips, saying how to run it;
// CI sets GRIN_REQUIRE_NODE=1, which turns the skip into a failure.
func TestTypeScriptClient(t *testing.T) {
	dir := "../openapi/ts"
	_, errNode := exec.LookPath("node")
	_, errMods := os.Stat(dir + "/node_modules/openapi-fetch")
	if errNode != nil || errMods != nil {
		msg := "the TypeScript client needs Node and its packages: cd openapi/ts && npm ci"
		if os.Getenv("GRIN_REQUIRE_NODE") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	tsc := exec.Command("npx", "--no-install", "tsc", "--noEmit")
	tsc.Dir = dir
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("the generated types do not accept the client: %v\n%s", err, out)
	}
	url := server(t, "GRIN_AUTH=required", "GRIN_ADMIN_PASSWORD=ts-admin-password")
	node := exec.Command("node", "--test", "test.mjs")
	node.Dir = dir
	node.Env = append(os.Environ(), "GRIN_URL="+url, "GRIN_ADMIN_PASSWORD=ts-admin-password")
	if out, err := node.CombinedOutput(); err != nil {
		t.Fatalf("node test: %v\n%s", err, out)
	}
}
