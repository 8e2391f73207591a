// Package integration drives the built grin binary end to end, through the
// Go client generated from the committed OpenAPI document.
package integration

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/openapi/client"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "grin-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "grin")
	if out, err := exec.Command("go", "build", "-o", binary, "../cmd/grin").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build grin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server starts the binary on a free loopback port with env and returns its
// URL; it stops with the test.
func server(t *testing.T, env ...string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(), append([]string{"GRIN_ADDR=" + addr, "GRIN_DATA_DIR=" + t.TempDir()}, env...)...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Errorf("grin did not stop on interrupt; log:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := http.Get(url + "/auth/available-permissions"); err == nil {
			r.Body.Close()
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("grin did not start; log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func bearer(tok string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

func TestGeneratedClientAgainstTheBinary(t *testing.T) {
	url := server(t, "GRIN_API_KEY=integration-key-0123456789", "GRIN_ADMIN_PASSWORD=admin-password")
	ctx := context.Background()
	c, err := client.NewClientWithResponses(url)
	if err != nil {
		t.Fatal(err)
	}
	// Log in.
	tr, err := c.CreateTokenWithResponse(ctx, client.Credentials{Username: "admin", Password: "admin-password"})
	if err != nil || tr.JSON200 == nil {
		t.Fatalf("login: %v %s", err, tr.Body)
	}
	admin := bearer(tr.JSON200.AccessToken)
	if r, _ := c.CreateTokenWithResponse(ctx, client.Credentials{Username: "admin", Password: "wrong"}); r.StatusCode() != 403 || r.ApplicationproblemJSON403 == nil {
		t.Errorf("wrong password: %d", r.StatusCode())
	}

	// Manage users.
	perms := client.PermissionSet{}
	conv := []client.Permission{client.WRITE, client.READ}
	mem := []client.Permission{client.READ, client.LIST}
	up := []client.Permission{client.WRITE}
	perms.CONVERSATION, perms.MEMORY, perms.UPLOAD = &conv, &mem, &up
	cu, err := c.CreateUserWithResponse(ctx, client.UserCreate{Username: "alice", Password: "wonderland", Permissions: &perms}, admin)
	if err != nil || cu.JSON200 == nil || cu.JSON200.Username != "alice" {
		t.Fatalf("create user: %v %s", err, cu.Body)
	}
	if r, _ := c.CreateUserWithResponse(ctx, client.UserCreate{Username: "alice", Password: "again"}, admin); r.StatusCode() != 409 {
		t.Errorf("duplicate: %d", r.StatusCode())
	}
	lu, _ := c.ListUsersWithResponse(ctx, &client.ListUsersParams{}, admin)
	if lu.JSON200 == nil || len(*lu.JSON200) != 3 {
		t.Errorf("list users: %s", lu.Body)
	}
	at, _ := c.CreateTokenWithResponse(ctx, client.Credentials{Username: "alice", Password: "wonderland"})
	alice := bearer(at.JSON200.AccessToken)
	if r, _ := c.ListUsersWithResponse(ctx, &client.ListUsersParams{}, alice); r.StatusCode() != 403 {
		t.Errorf("alice lists users: %d", r.StatusCode())
	}

	// Chat over HTTP, then recall.
	sm, err := c.SendMessageWithResponse(ctx, client.SendMessageJSONRequestBody{"text": "My favourite colour is blue"}, alice)
	if err != nil || sm.JSON200 == nil || sm.JSON200.UserId != cu.JSON200.Id.String() {
		t.Fatalf("message: %v %s", err, sm.Body)
	}
	rm, _ := c.RecallMemoriesWithResponse(ctx, client.RecallRequest{Text: "favourite colour"}, alice)
	if rm.JSON200 == nil || len(rm.JSON200.Vectors.Collections.Episodic) != 1 {
		t.Fatalf("recall: %s", rm.Body)
	}

	// Upload a document.
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("file", "hatter.txt")
	part.Write([]byte("The Hatter's tea party never ends."))
	w.Close()
	wait := true
	uf, err := c.UploadFileWithBodyWithResponse(ctx, &client.UploadFileParams{Wait: &wait}, w.FormDataContentType(), &body, alice)
	if err != nil || uf.JSON200 == nil || uf.JSON200.Result == nil || uf.JSON200.Result.Chunks != 1 {
		t.Fatalf("upload: %v %s", err, uf.Body)
	}

	// Manage plugins.
	wasm, manifest := buildAuthorPlugin(t)
	var pbody bytes.Buffer
	w = multipart.NewWriter(&pbody)
	part, _ = w.CreateFormFile("file", "author.zip")
	part.Write(zipOf(t, map[string][]byte{"manifest.json": manifest, "plugin.wasm": wasm}))
	w.Close()
	pu, err := c.UploadPluginWithBodyWithResponse(ctx, w.FormDataContentType(), &pbody, admin)
	if err != nil || pu.JSON200 == nil || pu.JSON200.Plugin.Id != "author" {
		t.Fatalf("upload plugin: %v %s", err, pu.Body)
	}
	tp, _ := c.TogglePluginWithResponse(ctx, "author", admin)
	if tp.JSON200 == nil || tp.JSON200.Plugin.Active {
		t.Errorf("toggle: %s", tp.Body)
	}
	lp, _ := c.ListPluginsWithResponse(ctx, &client.ListPluginsParams{}, admin)
	if lp.JSON200 == nil || len(lp.JSON200.Installed) != 1 {
		t.Errorf("list plugins: %s", lp.Body)
	}

	// Manage policies.
	gp, _ := c.GetPoliciesWithResponse(ctx, admin)
	if gp.JSON200 == nil || !strings.Contains(gp.JSON200.Policy, "role:admin") {
		t.Fatalf("policies: %s", gp.Body)
	}
	edited := client.Documents{Model: gp.JSON200.Model, Policy: gp.JSON200.Policy + "\np, role:auditor, users, list\n"}
	if r, _ := c.UpdatePoliciesWithResponse(ctx, &client.UpdatePoliciesParams{}, edited, admin); r.StatusCode() != 200 {
		t.Fatalf("update policies: %s", r.Body)
	}
	cp, _ := c.CheckPolicyWithResponse(ctx, client.PolicyCheck{Subject: "role:auditor", Object: "users", Action: "list"}, admin)
	if cp.JSON200 == nil || !cp.JSON200.Allowed {
		t.Errorf("check: %s", cp.Body)
	}
	broken := client.Documents{Model: gp.JSON200.Model, Policy: "p, only, two"}
	if r, _ := c.UpdatePoliciesWithResponse(ctx, &client.UpdatePoliciesParams{}, broken, admin); r.StatusCode() != 422 {
		t.Errorf("broken policy: %d", r.StatusCode())
	}

	// The API key acts as the user_id header's user.
	st, _ := c.GetStatusWithResponse(ctx, func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer integration-key-0123456789")
		r.Header.Set("user_id", "someone")
		return nil
	})
	if st.JSON200 == nil {
		t.Errorf("status with the API key: %s", st.Body)
	}
	// Deleting alice ends her token.
	c.DeleteUserWithResponse(ctx, cu.JSON200.Id.String(), admin)
	if r, _ := c.RecallMemoriesWithResponse(ctx, client.RecallRequest{Text: "x"}, alice); r.StatusCode() != 403 {
		t.Errorf("deleted alice recalls: %d", r.StatusCode())
	}
}

func buildAuthorPlugin(t *testing.T) (wasm, manifest []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "plugin.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = "../wasmhooks/examples/author"
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build plugin: %v\n%s", err, b)
	}
	wasm, _ = os.ReadFile(out)
	manifest, _ = os.ReadFile("../wasmhooks/examples/author/manifest.json")
	return wasm, manifest
}

func zipOf(t *testing.T, files map[string][]byte) []byte {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for name, b := range files {
		w, _ := z.Create(name)
		w.Write(b)
	}
	z.Close()
	return buf.Bytes()
}
