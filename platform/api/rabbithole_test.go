package api_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-pdf/fpdf"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// upload posts a multipart form to /rabbithole as Cat clients do.
func upload(t *testing.T, in *apptest.Instance, query, name, ctype string, data []byte, fields map[string]string, headers ...string) apptest.Response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="file"; filename="%s"`, name)}
	if ctype != "" {
		h["Content-Type"] = []string{ctype}
	}
	part, _ := w.CreatePart(h)
	part.Write(data)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	w.Close()
	return in.Do("POST", "/rabbithole/"+query, body.Bytes(), append([]string{"Content-Type", w.FormDataContentType()}, headers...)...)
}

func pdfWith(t *testing.T, lines ...string) []byte {
	p := fpdf.New("P", "mm", "A4", "")
	p.AddPage()
	p.SetFont("Helvetica", "", 12)
	for _, l := range lines {
		p.Cell(0, 8, l)
		p.Ln(10)
	}
	var buf bytes.Buffer
	if err := p.Output(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type recallResult struct {
	Vectors struct {
		Collections map[string][]struct {
			PageContent string         `json:"page_content"`
			Metadata    map[string]any `json:"metadata"`
		} `json:"collections"`
	} `json:"vectors"`
}

func recallDeclarative(t *testing.T, in *apptest.Instance, text string, headers ...string) []string {
	var r recallResult
	in.Do("POST", "/memory/recall", map[string]any{"text": text, "k": 10}, headers...).JSON(t, &r)
	var out []string
	for _, p := range r.Vectors.Collections["declarative"] {
		out = append(out, fmt.Sprintf("%v|%s", p.Metadata["source"], p.PageContent))
	}
	return out
}

func TestIngestEachFileType(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := backend.Start(t)
		for _, tc := range []struct {
			name, ctype string
			data        []byte
			query, want string
		}{
			{"notes.txt", "text/plain", []byte("The Mock Turtle sings about turtle soup."), "turtle soup", "Mock Turtle"},
			{"guide.md", "", []byte("# Croquet\n\nThe Queen plays croquet with [flamingos](https://example.org/f) as mallets."), "croquet flamingos", "flamingos as mallets"},
			{"page.html", "text/html", []byte("<html><head><script>var x='hedgehog script'</script></head><body><p>Hedgehogs serve as croquet balls.</p></body></html>"), "hedgehogs balls", "Hedgehogs serve as croquet balls"},
			{"report.pdf", "application/pdf", pdfWith(t, "The Duchess keeps a pepper pot in her kitchen."), "duchess pepper kitchen", "pepper pot"},
			{"facts.json", "application/json", []byte(`{"caterpillar": {"sits_on": "a mushroom", "smokes": "a hookah"}}`), "caterpillar mushroom", "mushroom"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := upload(t, in, "?wait=true", tc.name, tc.ctype, tc.data, map[string]string{"metadata": `{"shelf":"wonderland"}`})
				if r.Status != 200 {
					t.Fatalf("upload: %d %s", r.Status, r.Body)
				}
				got := recallDeclarative(t, in, tc.query)
				found := false
				for _, g := range got {
					if strings.HasPrefix(g, tc.name+"|") && strings.Contains(g, tc.want) {
						found = true
					}
					if strings.Contains(g, "hedgehog script") {
						t.Errorf("HTML scripts were stored: %q", g)
					}
				}
				if !found {
					t.Errorf("recall %q found %v, want a chunk of %s with %q", tc.query, got, tc.name, tc.want)
				}
			})
		}
		// Chunks carry source, when and the given metadata.
		var page pointsPage
		in.Do("GET", "/memory/collections/declarative/points", nil).JSON(t, &page)
		for _, p := range page.Points {
			if p.Metadata["source"] == nil || p.Metadata["when"] == nil || p.Metadata["shelf"] != "wonderland" {
				t.Errorf("chunk metadata %v", p.Metadata)
			}
		}
	})
}

func TestIngestChunking(t *testing.T) {
	in := apptest.Start(t)
	var sb strings.Builder
	for i := range 200 {
		fmt.Fprintf(&sb, "Sentence number %d about the tea party. ", i)
	}
	r := upload(t, in, "?wait=true", "long.txt", "text/plain", []byte(sb.String()), map[string]string{"chunk_size": "64", "chunk_overlap": "10"})
	var res struct {
		Result struct{ Chunks int } `json:"result"`
	}
	r.JSON(t, &res)
	if res.Result.Chunks < 20 {
		t.Errorf("200 sentences in chunks of 64 tokens gave %d chunks", res.Result.Chunks)
	}
	for _, bad := range []map[string]string{{"chunk_size": "100", "chunk_overlap": "100"}, {"chunk_size": "-1"}, {"chunk_size": "abc"}} {
		if r := upload(t, in, "?wait=true", "x.txt", "text/plain", []byte("x"), bad); r.Status != 422 && r.Status != 400 {
			t.Errorf("chunking %v: %d %s", bad, r.Status, r.Body)
		}
	}
}

func TestIngestRefusals(t *testing.T) {
	in := authRequired(t)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	user := apptest.Bearer(in.Login("user", apptest.UserPassword))
	if r := upload(t, in, "?wait=true", "a.txt", "text/plain", []byte("hi"), nil, user...); r.Status != 403 {
		t.Errorf("base user uploads: %d", r.Status)
	}
	if r := upload(t, in, "?wait=true", "a.exe", "application/x-msdownload", []byte{0x4d, 0x5a, 0, 1, 2}, nil, admin...); r.Status != 415 || !strings.Contains(r.Detail(), "text/plain") {
		t.Errorf("unsupported type: %d %s", r.Status, r.Body)
	}
	if r := upload(t, in, "?wait=true", "big.txt", "text/plain", bytes.Repeat([]byte("a "), 5<<20), nil, admin...); r.Status != 413 {
		t.Errorf("too large: %d %.200s", r.Status, r.Body)
	}
	if r := upload(t, in, "?wait=true", "bad.json", "application/json", []byte("{oops"), nil, admin...); r.Status != 422 {
		t.Errorf("broken JSON: %d", r.Status)
	}
	if r := upload(t, in, "?wait=true&space=legal", "a.txt", "text/plain", []byte("contract"), nil, user...); r.Status != 403 {
		t.Errorf("base user writing another space: %d", r.Status)
	}
	r := in.Do("GET", "/rabbithole/allowed-mimetypes", nil, admin...)
	if r.Status != 200 || !strings.Contains(string(r.Body), "application/pdf") {
		t.Errorf("allowed-mimetypes: %d %s", r.Status, r.Body)
	}
}

func TestIngestNotifiesTheUploader(t *testing.T) {
	in := apptest.Start(t)
	alice := dial(t, in, "/ws/alice")
	bob := dial(t, in, "/ws/bob")
	r := upload(t, in, "", "story.txt", "text/plain", []byte("Alice follows the rabbit."), nil, "user_id", "alice")
	if r.Status != 200 || !strings.Contains(r.Map(t)["info"].(string), "notification") {
		t.Fatalf("async upload: %d %s", r.Status, r.Body)
	}
	f := alice.next()
	if f.Type != "notification" || !strings.Contains(f.Content, "story.txt") {
		t.Errorf("alice got %+v, want the notification", f)
	}
	bob.quiet()
	// A failure is told too.
	upload(t, in, "", "broken.pdf", "application/pdf", []byte("%PDF-1.4 not really"), nil, "user_id", "alice")
	if f := alice.next(); f.Type != "notification" || !strings.Contains(f.Content, "Could not read") {
		t.Errorf("failure notification: %+v", f)
	}
}

func TestIngestWeb(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body><h1>The Jabberwock</h1><p>Beware the Jabberwock, my son!</p></body></html>")
	}))
	defer site.Close()
	in := apptest.Start(t)
	r := in.Do("POST", "/rabbithole/web?wait=true", map[string]any{"url": site.URL + "/poem"})
	if r.Status != 400 || !strings.Contains(r.Detail(), "GRIN_RABBITHOLE_ALLOW_PRIVATE") {
		t.Errorf("loopback page: %d %s, want refused by default", r.Status, r.Body)
	}
	for _, bad := range []string{"file:///etc/passwd", "ftp://example.org/x", "http://user:pw@example.org/", "not a url"} {
		if r := in.Do("POST", "/rabbithole/web?wait=true", map[string]any{"url": bad}); r.Status != 400 {
			t.Errorf("url %q: %d", bad, r.Status)
		}
	}

	cfg := apptest.Config(t.TempDir())
	cfg.RabbitholeAllowPrivate = true
	intranet := apptest.StartWith(t, cfg)
	if r := intranet.Do("POST", "/rabbithole/web?wait=true", map[string]any{"url": site.URL + "/poem"}); r.Status != 200 {
		t.Fatalf("allowed intranet page: %d %s", r.Status, r.Body)
	}
	got := recallDeclarative(t, intranet, "beware jabberwock")
	if len(got) == 0 || !strings.HasPrefix(got[0], site.URL+"/poem|") {
		t.Errorf("recall after reading the page: %v", got)
	}
}

func TestImportExportedMemories(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) {
		in := backend.Start(t)
		export := `{"embedder":{"name":"SomeOtherEmbedder"},"collections":{"declarative":[
		{"id":"0b8f8c1e-5a0e-4d8f-9b1e-2c3d4e5f6a7b","page_content":"The Dormouse sleeps in the teapot.","metadata":{"source":"old-cat"},"vector":[0.1,0.2]},
		{"id":"not-a-uuid","page_content":"The March Hare pours the tea.","metadata":{"source":"old-cat"},"vector":[0.3,0.4]}]}}`
		var body bytes.Buffer
		w := multipart.NewWriter(&body)
		part, _ := w.CreateFormFile("file", "export.json")
		part.Write([]byte(export))
		w.Close()
		r := in.Do("POST", "/rabbithole/memory", body.Bytes(), "Content-Type", w.FormDataContentType())
		if r.Status != 200 {
			t.Fatalf("import: %d %s", r.Status, r.Body)
		}
		// Vectors of another embedder were made again, so recall finds them.
		got := recallDeclarative(t, in, "dormouse teapot")
		if len(got) == 0 || !strings.Contains(got[0], "Dormouse") {
			t.Errorf("recall after import: %v", got)
		}
		var bad bytes.Buffer
		w = multipart.NewWriter(&bad)
		part, _ = w.CreateFormFile("file", "export.json")
		part.Write([]byte("not json"))
		w.Close()
		if r := in.Do("POST", "/rabbithole/memory", bad.Bytes(), "Content-Type", w.FormDataContentType()); r.Status != 422 {
			t.Errorf("broken export: %d", r.Status)
		}
	})
}
