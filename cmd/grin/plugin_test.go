package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/internal/logbuf"
	"github.com/grin-ai/grin/internal/pluginkit"
	"github.com/grin-ai/grin/platform/app/apptest"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// grinBinary builds this command once per test run: the plugin tests run
// the binary an author has, from folders outside this repository.
func grinBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "grin-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "grin")
		if out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput(); err != nil {
			binaryErr = errors.New(string(out))
		}
	})
	if binaryErr != nil {
		t.Fatalf("build grin: %v", binaryErr)
	}
	return binaryPath
}

// grinIn runs the built grin in dir, with the Go toolchain unable to reach
// anything but what the plugin folder holds: no module proxy, no
// workspace. It returns the exit code, stdout and stderr.
func grinIn(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(grinBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOFLAGS=-mod=mod")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("grin %v: %v", args, err)
	}
	return code, out.String(), errOut.String()
}

// requireKit skips a test whose plugin language has no toolchain here,
// saying how to install it; with GRIN_REQUIRE_PLUGIN_KITS=1 (CI installs
// them all) it fails instead.
func requireKit(t *testing.T, lang pluginkit.Lang) {
	t.Helper()
	if err := pluginkit.Toolchain(lang); err != nil {
		if os.Getenv("GRIN_REQUIRE_PLUGIN_KITS") == "1" {
			t.Fatalf("GRIN_REQUIRE_PLUGIN_KITS=1: %v", err)
		}
		t.Skip(err)
	}
}

// binaryServer is the built binary's grin serve, authentication off, on a
// free loopback port, stopped with the test.
type binaryServer struct {
	url    string
	client *http.Client
}

func serveBinary(t *testing.T) *binaryServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(grinBinary(t), "serve")
	cmd.Env = append(os.Environ(), "GRIN_ADDR="+addr, "GRIN_DATA_DIR="+t.TempDir(), "GRIN_ADMIN_PASSWORD="+apptest.AdminPassword)
	logs := &logbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("grin serve: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		<-exited
	})
	s := &binaryServer{url: "http://" + addr, client: &http.Client{Timeout: 60 * time.Second}}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r, err := s.client.Get(s.url + "/"); err == nil {
			r.Body.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("grin serve exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("grin serve did not answer: %s", logs.String())
		}
	}
}

// do sends a request; body is JSON unless it is []byte. headers alternate
// name and value.
func (s *binaryServer) do(t *testing.T, method, path string, body any, headers ...string) apptest.Response {
	t.Helper()
	var rd io.Reader
	if b, ok := body.([]byte); ok {
		rd = bytes.NewReader(b)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
		headers = append([]string{"Content-Type", "application/json"}, headers...)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return apptest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// upload installs a plugin archive.
func (s *binaryServer) upload(t *testing.T, archive []byte) apptest.Response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("file", "plugin.zip")
	part.Write(archive)
	w.Close()
	return s.do(t, "POST", "/plugins/upload", body.Bytes(), "Content-Type", w.FormDataContentType())
}

func uploadZip(t *testing.T, in *apptest.Instance, archive []byte) apptest.Response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("file", "plugin.zip")
	part.Write(archive)
	w.Close()
	return in.Do("POST", "/plugins/upload", body.Bytes(), "Content-Type", w.FormDataContentType())
}

// TestPluginNewBuildUpload is a newcomer's first plugin, in each language
// grin has a kit for: grin plugin new in a folder outside this repository,
// build and test with the grin binary alone, upload to that binary's grin
// serve, and see it change what two users say.
func TestPluginNewBuildUpload(t *testing.T) {
	for _, lang := range pluginkit.Langs {
		t.Run(string(lang), func(t *testing.T) {
			requireKit(t, lang)
			work := t.TempDir()
			if code, out, errOut := grinIn(t, work, "plugin", "new", "--lang", string(lang), "hide-mail"); code != 0 || !strings.Contains(out, "grin-") {
				t.Fatalf("new: %d\n%s\n%s", code, out, errOut)
			}
			code, out, errOut := grinIn(t, work, "plugin", "build", "-o", "hide-mail.zip", "hide-mail")
			if code != 0 || !strings.Contains(out, "plugin hide-mail 0.1.0") {
				t.Fatalf("build: %d\n%s\n%s", code, out, errOut)
			}
			if code, out, errOut := grinIn(t, work, "plugin", "test", "hide-mail"); code != 0 || !strings.Contains(out, "all 3 examples pass") {
				t.Fatalf("test: %d\n%s\n%s", code, out, errOut)
			}

			srv := serveBinary(t)
			archive, err := os.ReadFile(filepath.Join(work, "hide-mail.zip"))
			if err != nil {
				t.Fatal(err)
			}
			if r := srv.upload(t, archive); r.Status != 200 {
				t.Fatalf("upload: %d %s", r.Status, r.Body)
			}
			says := func(user, text string) string {
				var f struct {
					Why struct {
						Input string `json:"input"`
					} `json:"why"`
				}
				srv.do(t, "POST", "/message", map[string]any{"text": text}, "user_id", user).JSON(t, &f)
				return f.Why.Input
			}
			if got := says("alice", "Write to alice@example.com today"); got != "Write to [e-mail] today" {
				t.Errorf("alice's message reads %q", got)
			}
			if r := srv.do(t, "PUT", "/plugins/settings/hide-mail", map[string]any{"replacement": "(hidden)"}); r.Status != 200 {
				t.Fatalf("settings: %d %s", r.Status, r.Body)
			}
			if got := says("bob", "I am bob@example.org"); got != "I am (hidden)" {
				t.Errorf("bob's message reads %q", got)
			}
			for _, u := range []string{"alice", "bob"} {
				if r := srv.do(t, "GET", "/memory/conversation_history", nil, "user_id", u); r.Status != 200 || strings.Contains(string(r.Body), "@example") {
					t.Errorf("%s's history keeps the address: %d %s", u, r.Status, r.Body)
				}
			}

			// grin plugin run: the archive in the server's sandbox, with
			// its logs and its time.
			os.WriteFile(filepath.Join(work, "payload.json"), []byte(`{"text":"carol@example.net wrote"}`), 0o600)
			code, out, errOut = grinIn(t, work, "plugin", "run", "--payload", "payload.json", "--user", "carol", "hide-mail.zip", "before_cat_reads_message")
			if code != 0 || !strings.Contains(out, `"text": "[e-mail] wrote"`) || !strings.Contains(errOut, "hid an e-mail address for carol") || !strings.Contains(errOut, "changed the payload in") {
				t.Errorf("run: %d\n%s\n%s", code, out, errOut)
			}
			if lang == pluginkit.AssemblyScript {
				// Built by hand without the kit's abort, a module imports
				// env.abort: refused, saying which option fixes it.
				// (asc reads asconfig.json from its folder unless it is gone.)
				folder := filepath.Join(work, "hide-mail")
				os.Rename(filepath.Join(folder, "asconfig.json"), filepath.Join(work, "asconfig.json"))
				asc := exec.Command("npx", "--no-install", "asc", "assembly/index.ts", "-o", "plain.wasm")
				asc.Dir = folder
				b, err := asc.CombinedOutput()
				os.Rename(filepath.Join(work, "asconfig.json"), filepath.Join(folder, "asconfig.json"))
				if err != nil {
					t.Fatalf("asc: %v\n%s", err, b)
				}
				code, _, errOut := grinIn(t, work, "plugin", "pack", "-wasm", "hide-mail/plain.wasm", "hide-mail")
				if code == 0 || !strings.Contains(errOut, "imports env.abort") || !strings.Contains(errOut, "--use abort=~lib/@grin-ai/grin-kit/assembly/index/abort") {
					t.Errorf("a module importing env.abort: %d %s", code, errOut)
				}
				os.Remove(filepath.Join(work, "hide-mail", "plain.wasm"))
			}
			// A wrong expectation fails, with a diff.
			os.WriteFile(filepath.Join(work, "hide-mail", "examples", "wrong.json"),
				[]byte(`{"hook":"before_cat_reads_message","payload":{"text":"x@example.com"},"want":{"text":"x@example.com"}}`), 0o600)
			code, out, _ = grinIn(t, work, "plugin", "test", "hide-mail")
			if code != 1 || !strings.Contains(out, "FAIL wrong") || !strings.Contains(out, `-   "text": "x@example.com"`) || !strings.Contains(out, `+   "text": "[e-mail]"`) || !strings.Contains(out, "1 of 4 examples failed") {
				t.Errorf("a failing example: %d\n%s", code, out)
			}
		})
	}
}

// TestPluginRunSandbox: grin plugin run keeps the server's limits, so a
// hostile module fails alone, and says how.
func TestPluginRunSandbox(t *testing.T) {
	for _, tc := range []struct{ guest, says string }{
		{"loop", "ran past its deadline"},
		{"bomb", "the hook failed"},
		{"panic", "panicked"},
	} {
		t.Run(tc.guest, func(t *testing.T) {
			dir := t.TempDir()
			wasm := filepath.Join(dir, "plugin.wasm")
			build := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, ".")
			build.Dir = "../../wasmhooks/testdata/guests/" + tc.guest
			build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if b, err := build.CombinedOutput(); err != nil {
				t.Fatalf("build: %v\n%s", err, b)
			}
			os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"id":"hostile","name":"Hostile","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}]}`), 0o600)
			if code, out, errOut := runGrin(t, nil, "plugin", "pack", "-o", dir+"/h.zip", dir); code != 0 {
				t.Fatalf("pack: %d %s %s", code, out, errOut)
			}
			code, out, errOut := runGrin(t, nil, "plugin", "run", dir+"/h.zip", "before_cat_reads_message")
			if code == 0 || !strings.Contains(errOut, tc.says) || !strings.Contains(errOut, "goes on with the payload as it was") {
				t.Errorf("exit %d\n%s\n%s", code, out, errOut)
			}
			var payload map[string]any
			if json.Unmarshal([]byte(out), &payload) != nil {
				t.Errorf("the payload as it was is not printed: %q", out)
			}
		})
	}
}

// TestPluginRefusalsForAuthors: a module grin refuses is refused in the
// author's terms, with the fix in each kit's language, by grin plugin
// build and by the server alike.
func TestPluginRefusalsForAuthors(t *testing.T) {
	work := t.TempDir()
	dir := filepath.Join(work, "bare")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module bare\n\ngo 1.24\n"), 0o600)
	// A hook export without the kit: no ABI marker.
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\n//go:wasmexport hook_before_cat_reads_message\nfunc hook(n uint32) uint32 { return 2 }\n\nfunc main() {}\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(`{"id":"bare","name":"Bare","version":"1","hooks":[{"name":"before_cat_reads_message","priority":1}]}`), 0o600)
	fixes := []string{"exports neither grin_hook_abi_v2() nor grin_hook_abi_v1()", "import github.com/grin-ai/grin/wasmhooks/pdk", "with AssemblyScript", "with Rust"}
	code, _, errOut := grinIn(t, work, "plugin", "build", "bare")
	for _, want := range fixes {
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("build: exit %d, the refusal lacks %q:\n%s", code, want, errOut)
		}
	}
	wasm := filepath.Join(dir, "bare.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-o", wasm, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOPROXY=off")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	var zipped bytes.Buffer
	zw := newZip(&zipped)
	zw.add("manifest.json", filepath.Join(dir, "manifest.json"))
	zw.add("plugin.wasm", wasm)
	zw.close()
	in := apptest.Start(t)
	r := uploadZip(t, in, zipped.Bytes())
	for _, want := range fixes {
		if r.Status != 422 || !strings.Contains(r.Detail(), want) {
			t.Errorf("upload: %d, the refusal lacks %q: %s", r.Status, want, r.Body)
		}
	}
}

type zipper struct{ w *zip.Writer }

func newZip(w io.Writer) *zipper { return &zipper{w: zip.NewWriter(w)} }

func (z *zipper) add(name, path string) {
	b, _ := os.ReadFile(path)
	f, _ := z.w.Create(name)
	f.Write(b)
}

func (z *zipper) close() { z.w.Close() }
