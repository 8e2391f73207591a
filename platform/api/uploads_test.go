package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/config"
)

// form is a multipart body whose one file part holds size bytes of fill,
// produced as it is read, so a test can send more than it keeps in memory.
type form struct {
	field, filename, ctype string
	size                   int64
	fill                   string // repeated to size; "a " when empty
	head, tail             []byte // the file's first and last bytes, around fill
	fields                 map[string]string
	truncate               bool // end without the closing boundary
}

func (f form) reader() (io.Reader, string, int64) {
	var head, tail bytes.Buffer
	w := multipart.NewWriter(&head)
	for k, v := range f.fields {
		w.WriteField(k, v)
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, f.field, f.filename))
	if f.ctype != "" {
		h.Set("Content-Type", f.ctype)
	}
	w.CreatePart(h)
	head.Write(f.head)
	tail.Write(f.tail)
	if !f.truncate {
		end := multipart.NewWriter(&tail)
		end.SetBoundary(w.Boundary())
		end.Close()
	}
	fill := f.fill
	if fill == "" {
		fill = "a "
	}
	n := f.size - int64(len(f.head)+len(f.tail))
	body := io.MultiReader(bytes.NewReader(head.Bytes()), io.LimitReader(repeat(fill), n), bytes.NewReader(tail.Bytes()))
	return body, w.FormDataContentType(), int64(head.Len()) + n + int64(tail.Len())
}

// repeat reads s over and over.
func repeat(s string) io.Reader {
	return &repeater{s: s}
}

type repeater struct {
	s   string
	off int
}

func (r *repeater) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.s[r.off:])
		n += c
		r.off = (r.off + c) % len(r.s)
	}
	return n, nil
}

// tempEntries lists the temporary directory.
func tempEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestUploadsLeaveNoTemporaryFiles sends accepted and refused uploads to
// every multipart endpoint, with and without a trailing slash, and checks
// that the temporary directory holds no more files after each than
// before: every part over 8 KiB is written there while the form is read.
func TestUploadsLeaveNoTemporaryFiles(t *testing.T) {
	manifest, err := os.ReadFile("../../wasmhooks/examples/author/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	// Built before TMPDIR changes: go build has temporary files of its own.
	archive := zipPlugin(t, string(manifest), buildWasm(t, "../../wasmhooks/examples/author"))
	in := authRequired(t, func(c *config.Config) { c.UploadMaxBytes = 1 << 20 })
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	user := apptest.Bearer(in.Login("user", apptest.UserPassword))

	tmp := filepath.Join(t.TempDir(), "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", tmp) // os.TempDir, where forms put their files, reads it
	if os.TempDir() != tmp {
		t.Fatalf("os.TempDir() = %s, want %s", os.TempDir(), tmp)
	}

	text := form{field: "file", filename: "notes.txt", ctype: "text/plain", size: 64 << 10}
	// An export padded inside a string; without its end it is malformed.
	export := func(size int64) form {
		return form{field: "file", filename: "export.json", ctype: "application/json", size: size, fill: "z",
			head: []byte(`{"embedder":{"name":"Other"},"collections":{"declarative":[{"page_content":"The Dormouse sleeps.","metadata":{"pad":"`),
			tail: []byte(`"}}]}}`)}
	}
	malformed := export(64 << 10)
	malformed.tail = nil
	plugin := form{field: "file", filename: "plugin.zip", ctype: "application/zip", size: int64(len(archive)), head: archive}

	for _, tc := range []struct {
		name    string
		path    string
		form    form
		headers []string
		want    int
	}{
		{"document accepted", "/rabbithole?wait=true", text, admin, 200},
		{"document accepted, slash", "/rabbithole/?wait=true", text, admin, 200},
		{"document accepted, read later", "/rabbithole/", text, admin, 200},
		{"document over the limit", "/rabbithole/", withSize(text, 3<<19), admin, 413},
		{"body over the limit", "/rabbithole/", withSize(text, 8<<20), admin, 413},
		{"document without permission", "/rabbithole/", text, user, 403},
		{"document to a bad space", "/rabbithole/?space=no%20such/space", text, admin, 422},
		{"document of an unreadable type", "/rabbithole?wait=true", form{field: "file", filename: "a.exe", ctype: "application/x-msdownload", size: 64 << 10}, admin, 415},
		{"document under the wrong field", "/rabbithole/", form{field: "document", filename: "notes.txt", size: 64 << 10}, admin, 422},
		{"document form cut short", "/rabbithole/", form{field: "file", filename: "notes.txt", size: 64 << 10, truncate: true}, admin, 422},
		{"export accepted", "/rabbithole/memory", export(64 << 10), admin, 200},
		{"export accepted, slash", "/rabbithole/memory/", export(64 << 10), admin, 200},
		{"export over the limit", "/rabbithole/memory/", export(3 << 19), admin, 413},
		{"export body over the limit", "/rabbithole/memory", export(8 << 20), admin, 413},
		{"export without permission", "/rabbithole/memory", export(64 << 10), user, 403},
		{"export malformed", "/rabbithole/memory/", malformed, admin, 422},
		{"plugin accepted", "/plugins/upload", plugin, admin, 200},
		{"plugin accepted, slash", "/plugins/upload/", plugin, admin, 200},
		{"plugin without permission", "/plugins/upload", plugin, user, 403},
		{"plugin archive broken", "/plugins/upload/", withSize(form{field: "file", filename: "plugin.zip", ctype: "application/zip"}, 64<<10), admin, 422},
		{"plugin archive over the limit", "/plugins/upload", withSize(form{field: "file", filename: "plugin.zip", ctype: "application/zip"}, 64<<20+1), admin, 413},
		{"plugin body over the limit", "/plugins/upload/", withSize(form{field: "file", filename: "plugin.zip", ctype: "application/zip"}, 70<<20), admin, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tempEntries(t, tmp)
			body, ctype, n := tc.form.reader()
			req, err := http.NewRequest("POST", in.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = n
			req.Header.Set("Content-Type", ctype)
			for i := 0; i+1 < len(tc.headers); i += 2 {
				req.Header.Set(tc.headers[i], tc.headers[i+1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("POST %s: %v", tc.path, err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("POST %s: %d %.300s, want %d", tc.path, resp.StatusCode, answer, tc.want)
			}
			// The files are removed as the request ends, which may be a
			// moment after the client has its answer.
			deadline := time.Now().Add(5 * time.Second)
			for {
				left := newEntries(before, tempEntries(t, tmp))
				if len(left) == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("POST %s left %d files in the temporary directory: %v", tc.path, len(left), left)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	in.Ingester.Wait()
}

// newEntries are the names in after that are not in before.
func newEntries(before, after []string) []string {
	var out []string
	for _, a := range after {
		if !slices.Contains(before, a) {
			out = append(out, a)
		}
	}
	return out
}

func withSize(f form, size int64) form {
	f.size = size
	return f
}

// countingReader counts what the client's connection took from it.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestUploadCutAtTheLimit sends a body far larger than the limit and
// checks that the answer is 413 and that grin stopped reading: the client
// could not hand over the whole body. The request goes over a plain
// connection, so the answer is read while the body is still being sent.
func TestUploadCutAtTheLimit(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.UploadMaxBytes = 1 << 20
	in := apptest.StartWith(t, cfg)
	for _, path := range []string{"/rabbithole/", "/rabbithole/memory", "/plugins/upload"} {
		t.Run(path, func(t *testing.T) {
			body, ctype, total := form{field: "file", filename: "huge.txt", ctype: "text/plain", size: 256 << 20}.reader()
			counted := &countingReader{r: body}
			conn, err := net.Dial("tcp", strings.TrimPrefix(in.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
				path, strings.TrimPrefix(in.URL, "http://"), ctype, total)
			sent := make(chan error, 1)
			go func() {
				_, err := io.Copy(conn, counted)
				sent <- err
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			conn.Close() // stops the client's copy if the server has not
			<-sent
			if resp.StatusCode != 413 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(answer), "MiB") {
				t.Errorf("answer %d %s %s, want 413 problem+json naming the limit", resp.StatusCode, resp.Header.Get("Content-Type"), answer)
			}
			if n := counted.n.Load(); n >= total {
				t.Errorf("the client sent all %d bytes; grin read the whole body instead of stopping at its limit", total)
			} else {
				t.Logf("the client could send %d MiB of %d MiB", n>>20, total>>20)
			}
		})
	}
}

// TestUploadLimitCoversEveryDocument: GRIN_UPLOAD_MAX_MB bounds an export
// of memories and a fetched page as it bounds a file, with 413 and the
// limit in the answer, and nothing is stored.
func TestUploadLimitCoversEveryDocument(t *testing.T) {
	page := strings.Repeat("<p>The Walrus and the Carpenter were walking close at hand.</p>\n", (2<<20)/64)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		if r.URL.Path == "/chunked" {
			// No Content-Length: the page is cut while it downloads.
			w.(http.Flusher).Flush()
		}
		io.WriteString(w, page)
	}))
	defer site.Close()
	cfg := apptest.Config(t.TempDir())
	cfg.UploadMaxBytes = 1 << 20
	cfg.RabbitholeAllowPrivate = true
	in := apptest.StartWith(t, cfg)

	for _, path := range []string{"/page", "/chunked"} {
		r := in.Do("POST", "/rabbithole/web?wait=true", map[string]any{"url": site.URL + path})
		if r.Status != 413 || !strings.Contains(r.Detail(), "1 MiB") {
			t.Errorf("a %d MiB page%s: %d %s, want 413 naming the 1 MiB limit", len(page)>>20, path, r.Status, r.Body)
		}
	}
	body, ctype, _ := form{field: "file", filename: "export.json", ctype: "application/json", size: 3 << 19, fill: "z",
		head: []byte(`{"embedder":{"name":"Other"},"collections":{"declarative":[{"page_content":"The Walrus weeps.","metadata":{"pad":"`),
		tail: []byte(`"}}]}}`)}.reader()
	raw, _ := io.ReadAll(body)
	if r := in.Do("POST", "/rabbithole/memory", raw, "Content-Type", ctype); r.Status != 413 || !strings.Contains(r.Detail(), "1 MiB") {
		t.Errorf("a 1.5 MiB export: %d %s, want 413 naming the 1 MiB limit", r.Status, r.Body)
	}
	if got := recallDeclarative(t, in, "walrus carpenter"); len(got) != 0 {
		t.Errorf("refused documents were stored: %d chunks", len(got))
	}
}
