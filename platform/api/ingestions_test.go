package api_test

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/config"
)

// gatedEmbedder speaks the OpenAI embeddings protocol and holds requests
// after the first free ones until the test releases them (or the client
// gives up): an ingestion stopped between two batches, deterministically.
// The probe grin sends when the embedder is selected is always answered.
type gatedEmbedder struct {
	*httptest.Server
	free    int
	held    chan struct{} // one value per request being held
	release chan struct{} // closed to let held requests through

	mu sync.Mutex
	n  int
}

func newGatedEmbedder(t *testing.T, free int) *gatedEmbedder {
	g := &gatedEmbedder{free: free, held: make(chan struct{}, 100), release: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Input []string `json:"input"`
		}
		json.NewDecoder(r.Body).Decode(&req)
		if len(req.Input) != 1 || req.Input[0] != "grin" {
			g.mu.Lock()
			g.n++
			hold := g.n > g.free
			g.mu.Unlock()
			if hold {
				g.held <- struct{}{}
				select {
				case <-g.release:
				case <-r.Context().Done():
					return
				}
			}
		}
		type item struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		}
		out := struct {
			Data []item `json:"data"`
		}{}
		for i, text := range req.Input {
			h := fnv.New32a()
			h.Write([]byte(text))
			v := make([]float32, 8)
			for k := range v {
				v[k] = float32((h.Sum32()>>(k*4))&15) + 1
			}
			out.Data = append(out.Data, item{Index: i, Embedding: v})
		}
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(func() {
		g.open()
		g.Close()
	})
	return g
}

// open releases held requests and every later one.
func (g *gatedEmbedder) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.release:
	default:
		close(g.release)
	}
}

// waitHeld waits until n more requests are being held.
func (g *gatedEmbedder) waitHeld(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-g.held:
		case <-time.After(time.Minute):
			t.Fatal("the ingestion never reached the embedder")
		}
	}
}

// ingestionServer is an instance with authentication, the gated embedder,
// and a user who may upload.
type ingestionServer struct {
	*apptest.Instance
	admin, uploader []string
	uploaderID      string
}

func startIngestionServer(t *testing.T, emb *gatedEmbedder, edit ...func(*config.Config)) ingestionServer {
	t.Helper()
	in := authRequired(t, append([]func(*config.Config){func(c *config.Config) {
		c.Embedder.Kind, c.Embedder.BaseURL, c.Embedder.Model = "openai-compatible", emb.URL+"/v1", "gated"
	}}, edit...)...)
	admin := apptest.Bearer(in.Login("admin", apptest.AdminPassword))
	var u struct{ ID string }
	r := in.Do("POST", "/users", map[string]any{"username": "hatter", "password": "teatime",
		"permissions": map[string]any{"UPLOAD": []string{"WRITE"}, "MEMORY": []string{"READ", "LIST"}, "CONVERSATION": []string{"WRITE", "READ"}}}, admin...)
	if r.Status != 200 {
		t.Fatalf("create the uploader: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &u)
	return ingestionServer{Instance: in, admin: admin, uploader: apptest.Bearer(in.Login("hatter", "teatime")), uploaderID: u.ID}
}

// bigDocument makes far more than one batch (64) of chunks at the
// smallest chunk size.
func bigDocument() []byte {
	var sb strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&sb, "Sentence number %d of the Hatter's endless tea party story. ", i)
	}
	return []byte(sb.String())
}

// spacePoints counts the points of a space, as an administrator sees them.
func (s ingestionServer) spacePoints(t *testing.T, space string) int {
	t.Helper()
	var list struct {
		Spaces []struct {
			Name         string `json:"name"`
			VectorsCount int    `json:"vectors_count"`
		} `json:"spaces"`
	}
	s.Do("GET", "/memory/spaces", nil, s.admin...).JSON(t, &list)
	for _, sp := range list.Spaces {
		if sp.Name == space {
			return sp.VectorsCount
		}
	}
	return 0
}

type ingestionInfo struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Source string `json:"source"`
	Space  string `json:"space"`
	Done   int    `json:"chunks_done"`
	Total  int    `json:"chunks_total"`
}

func (s ingestionServer) ingestions(t *testing.T, headers []string) []ingestionInfo {
	t.Helper()
	r := s.Do("GET", "/rabbithole/ingestions", nil, headers...)
	if r.Status != 200 {
		t.Fatalf("list ingestions: %d %s", r.Status, r.Body)
	}
	var out []ingestionInfo
	r.JSON(t, &out)
	return out
}

// startHeld uploads the big document as the uploader and waits until its
// first batch is stored and the second is held at the embedder.
func (s ingestionServer) startHeld(t *testing.T, emb *gatedEmbedder) ingestionInfo {
	t.Helper()
	if r := upload(t, s.Instance, "", "tea-party.txt", "text/plain", bigDocument(), map[string]string{"chunk_size": "64"}, s.uploader...); r.Status != 200 {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	emb.waitHeld(t, 1)
	list := s.ingestions(t, s.admin)
	if len(list) != 1 || list[0].UserID != s.uploaderID || list[0].Source != "tea-party.txt" || list[0].Space != "shared" ||
		list[0].Done != 64 || list[0].Total <= 64 {
		t.Fatalf("running ingestions %+v, want the uploader's with one batch of 64 done", list)
	}
	if n := s.spacePoints(t, "shared"); n != 64 {
		t.Fatalf("shared holds %d points while the ingestion runs, want its first batch of 64", n)
	}
	return list[0]
}

// TestStoppedIngestionsLeaveNothing: deleting the uploader, revoking their
// upload permission, or an administrator's cancel stops a running
// ingestion before the call answers, and what it stored is gone.
func TestStoppedIngestionsLeaveNothing(t *testing.T) {
	apptest.EachBackend(t, func(t *testing.T, backend apptest.Backend) { testStoppedIngestionsLeaveNothing(t, backend) })
}

func testStoppedIngestionsLeaveNothing(t *testing.T, backend apptest.Backend) {
	for _, tc := range []struct {
		name string
		stop func(t *testing.T, s ingestionServer, job ingestionInfo) apptest.Response
	}{
		{"user deleted", func(t *testing.T, s ingestionServer, _ ingestionInfo) apptest.Response {
			return s.Do("DELETE", "/users/"+s.uploaderID, nil, s.admin...)
		}},
		{"upload permission revoked", func(t *testing.T, s ingestionServer, _ ingestionInfo) apptest.Response {
			return s.Do("PUT", "/users/"+s.uploaderID, map[string]any{"permissions": map[string]any{"MEMORY": []string{"READ"}}}, s.admin...)
		}},
		{"cancelled by an administrator", func(t *testing.T, s ingestionServer, job ingestionInfo) apptest.Response {
			return s.Do("DELETE", "/rabbithole/ingestions/"+job.ID, nil, s.admin...)
		}},
		{"cancelled by the uploader", func(t *testing.T, s ingestionServer, job ingestionInfo) apptest.Response {
			return s.Do("DELETE", "/rabbithole/ingestions/"+job.ID, nil, s.uploader...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			emb := newGatedEmbedder(t, 1)
			s := startIngestionServer(t, emb, backend.Use(t))
			job := s.startHeld(t, emb)
			if r := tc.stop(t, s, job); r.Status != 200 {
				t.Fatalf("stop: %d %s", r.Status, r.Body)
			}
			if list := s.ingestions(t, s.admin); len(list) != 0 {
				t.Errorf("still running after the stop answered: %+v", list)
			}
			if n := s.spacePoints(t, "shared"); n != 0 {
				t.Errorf("shared holds %d points after the stop answered, want none of the stopped upload", n)
			}
			// Let the embedder answer everything: nothing more lands.
			emb.open()
			if n := s.spacePoints(t, "shared"); n != 0 {
				t.Errorf("shared holds %d points once the embedder answers again", n)
			}
		})
	}
}

// TestPolicyReloadStopsAnIngestionAtTheNextBatch: a grant withdrawn
// through the policy (not the user's dictionary) is seen before the next
// batch is written.
func TestPolicyReloadStopsAnIngestionAtTheNextBatch(t *testing.T) {
	emb := newGatedEmbedder(t, 1)
	s := startIngestionServer(t, emb)
	sock := dial(t, s.Instance, "/ws?token="+strings.TrimPrefix(s.uploader[1], "Bearer "))
	s.startHeld(t, emb)
	var docs map[string]any
	s.Do("GET", "/policies", nil, s.admin...).JSON(t, &docs)
	policy := docs["policy"].(string)
	without := strings.Replace(policy, "p, perm:upload:write, declarative:shared, write\n", "", 1)
	if without == policy {
		t.Fatal("the default policy no longer has the rule this test withdraws")
	}
	docs["policy"] = without
	if r := s.Do("PUT", "/policies", docs, s.admin...); r.Status != 200 {
		t.Fatalf("update the policy: %d %s", r.Status, r.Body)
	}
	emb.open()
	if f := sock.next(); f.Type != "notification" || !strings.Contains(f.Content, "Could not read tea-party.txt") || !strings.Contains(f.Content, "may no longer write") {
		t.Fatalf("notification %+v, want the reading stopped for lack of permission", f)
	}
	if n := s.spacePoints(t, "shared"); n != 0 {
		t.Errorf("shared holds %d points after the stopped reading, want none", n)
	}
}

func TestIngestionListAndCancelAreScoped(t *testing.T) {
	emb := newGatedEmbedder(t, 1)
	s := startIngestionServer(t, emb)
	job := s.startHeld(t, emb)
	var other struct{ ID string }
	s.Do("POST", "/users", map[string]any{"username": "march-hare", "password": "teatime",
		"permissions": map[string]any{"UPLOAD": []string{"WRITE"}}}, s.admin...).JSON(t, &other)
	hare := apptest.Bearer(s.Login("march-hare", "teatime"))
	if list := s.ingestions(t, hare); len(list) != 0 {
		t.Errorf("another uploader sees %+v", list)
	}
	if r := s.Do("DELETE", "/rabbithole/ingestions/"+job.ID, nil, hare...); r.Status != 404 {
		t.Errorf("another uploader cancels: %d %s", r.Status, r.Body)
	}
	if list := s.ingestions(t, s.uploader); len(list) != 1 || list[0].ID != job.ID {
		t.Errorf("the uploader sees %+v, want their ingestion", list)
	}
	if r := s.Do("GET", "/rabbithole/ingestions", nil, apptest.Bearer(s.Login("user", apptest.UserPassword))...); r.Status != 403 {
		t.Errorf("a user who may not upload lists ingestions: %d", r.Status)
	}
	if r := s.Do("DELETE", "/rabbithole/ingestions/no-such-id", nil, s.admin...); r.Status != 404 || r.Detail() == "" {
		t.Errorf("cancel an unknown ingestion: %d %s", r.Status, r.Body)
	}
}

func TestConcurrentIngestionsPerUserAreBounded(t *testing.T) {
	emb := newGatedEmbedder(t, 0)
	s := startIngestionServer(t, emb)
	for i := range 2 {
		if r := upload(t, s.Instance, "", fmt.Sprintf("part-%d.txt", i), "text/plain", []byte("The Dormouse tells a story about a treacle well."), nil, s.uploader...); r.Status != 200 {
			t.Fatalf("upload %d: %d %s", i, r.Status, r.Body)
		}
	}
	emb.waitHeld(t, 2)
	r := upload(t, s.Instance, "", "part-3.txt", "text/plain", []byte("A third story."), nil, s.uploader...)
	if r.Status != 429 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Detail(), "GRIN_INGEST_MAX_PER_USER") {
		t.Errorf("third concurrent upload: %d %v %s, want 429 with Retry-After and the reason", r.Status, r.Header, r.Body)
	}
	// Another user is not held up by the first one's uploads.
	if r := upload(t, s.Instance, "", "admin.txt", "text/plain", []byte("The Queen's rules."), nil, s.admin...); r.Status != 200 {
		t.Errorf("another user's upload: %d %s", r.Status, r.Body)
	}
}

func TestUploadLimits(t *testing.T) {
	apptest.EachBackend(t, testUploadLimits)
}

func testUploadLimits(t *testing.T, backend apptest.Backend) {
	cfg := backend.Config(t, t.TempDir())
	cfg.Ingest.MaxPoints, cfg.Ingest.SpaceQuota, cfg.Ingest.UserQuota = 20, 30, 40
	in := apptest.StartWith(t, cfg)
	doc := func(sentences int) []byte {
		var sb strings.Builder
		for i := range sentences {
			// About 45 tokens: no two lines fit in one chunk of 64.
			fmt.Fprintf(&sb, "Line %d: the Queen of Hearts, she made some tarts, all on a summer day; the Knave of Hearts, he stole those tarts, and took them clean away. The King of Hearts called for the tarts.\n\n", i)
		}
		return []byte(sb.String())
	}
	stored := func(space string) int {
		var list struct {
			Spaces []struct {
				Name         string `json:"name"`
				VectorsCount int    `json:"vectors_count"`
			} `json:"spaces"`
		}
		in.Do("GET", "/memory/spaces", nil).JSON(t, &list)
		for _, sp := range list.Spaces {
			if sp.Name == space {
				return sp.VectorsCount
			}
		}
		return 0
	}
	chunks := func(r apptest.Response) int {
		var res struct {
			Result struct{ Chunks int } `json:"result"`
		}
		r.JSON(t, &res)
		return res.Result.Chunks
	}

	for _, tc := range []struct{ size, overlap, want string }{
		{"1", "", "chunk_size must be at least 64"},
		{"63", "", "chunk_size must be at least 64"},
		{"100", "51", "chunk_overlap must be at most half"},
	} {
		r := upload(t, in, "?wait=true", "tiny.txt", "text/plain", doc(3), map[string]string{"chunk_size": tc.size, "chunk_overlap": tc.overlap})
		if r.Status != 422 || !strings.Contains(r.Detail(), tc.want) {
			t.Errorf("chunk_size %s, overlap %s: %d %s, want 422 saying %q", tc.size, tc.overlap, r.Status, r.Body, tc.want)
		}
	}

	// One line is one chunk at chunk_size 64: 25 lines are past the
	// per-upload cap of 20, and nothing is stored.
	r := upload(t, in, "?wait=true", "tarts.txt", "text/plain", doc(25), map[string]string{"chunk_size": "64"})
	if r.Status != 413 || !strings.Contains(r.Detail(), "GRIN_UPLOAD_MAX_POINTS") || !strings.Contains(r.Detail(), "chunk_size") {
		t.Errorf("upload past the per-upload cap: %d %s", r.Status, r.Body)
	}
	if n := stored("shared"); n != 0 {
		t.Errorf("a refused upload stored %d points", n)
	}

	// The space's quota of 30: 18 fit, 18 more do not, and the space
	// keeps 18.
	r = upload(t, in, "?wait=true", "tarts-1.txt", "text/plain", doc(18), map[string]string{"chunk_size": "64"})
	if r.Status != 200 || chunks(r) != 18 {
		t.Fatalf("first upload: %d %s, want 18 chunks", r.Status, r.Body)
	}
	r = upload(t, in, "?wait=true", "tarts-2.txt", "text/plain", doc(18), map[string]string{"chunk_size": "64"})
	if r.Status != 409 || !strings.Contains(r.Detail(), "GRIN_QUOTA_SPACE_POINTS") {
		t.Errorf("upload past the space's quota: %d %s", r.Status, r.Body)
	}
	if n := stored("shared"); n != 18 {
		t.Errorf("shared holds %d points, want the first upload's 18", n)
	}
	// The user's quota of 40 counts every space: 18 in shared, 18 in
	// another space fit, then 18 more do not, even in a third space.
	if r := upload(t, in, "?wait=true&space=kitchen", "tarts-3.txt", "text/plain", doc(18), map[string]string{"chunk_size": "64"}); r.Status != 200 {
		t.Fatalf("upload to another space: %d %s", r.Status, r.Body)
	}
	r = upload(t, in, "?wait=true&space=garden", "tarts-4.txt", "text/plain", doc(18), map[string]string{"chunk_size": "64"})
	if r.Status != 409 || !strings.Contains(r.Detail(), "GRIN_QUOTA_USER_POINTS") {
		t.Errorf("upload past the user's quota: %d %s", r.Status, r.Body)
	}
	if n := stored("garden"); n != 0 {
		t.Errorf("garden holds %d points after a refused upload", n)
	}
	// Another user still has room of their own in a space with room.
	if r := upload(t, in, "?wait=true&space=garden", "roses.txt", "text/plain", doc(5), map[string]string{"chunk_size": "64"}, "user_id", "gardener"); r.Status != 200 {
		t.Errorf("another user's upload: %d %s", r.Status, r.Body)
	}
}

// TestUnreachableURLs: /rabbithole/web answers 400 "Unable to reach the
// URL" with the reason for what cannot be fetched, before answering, and
// reads reachable pages as before.
func TestUnreachableURLs(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<html><body><p>Twinkle, twinkle, little bat.</p></body></html>")
	}))
	defer site.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/"
	l.Close()

	strict := apptest.Start(t)
	cfg := apptest.Config(t.TempDir())
	cfg.RabbitholeAllowPrivate = true
	intranet := apptest.StartWith(t, cfg)
	for _, tc := range []struct {
		name   string
		in     *apptest.Instance
		url    string
		reason string
	}{
		{"unresolvable host", intranet, "http://nonexistent.invalid/", "could not be resolved"},
		{"closed port", intranet, closed, "nothing accepts connections"},
		{"private address", strict, site.URL + "/bat", "GRIN_RABBITHOLE_ALLOW_PRIVATE"},
		{"private address by name", strict, "http://localhost:" + strconv.Itoa(site.Listener.Addr().(*net.TCPAddr).Port) + "/", "loopback"},
		{"file scheme", intranet, "file:///etc/passwd", "only http and https"},
		{"ftp scheme", intranet, "ftp://example.org/x", "only http and https"},
		{"credentials", intranet, "http://user:pw@example.org/", "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, wait := range []string{"", "?wait=true"} {
				r := tc.in.Do("POST", "/rabbithole/web"+wait, map[string]any{"url": tc.url})
				if r.Status != 400 || !strings.HasPrefix(r.Detail(), "Unable to reach the URL") || !strings.Contains(r.Detail(), tc.reason) {
					t.Errorf("%s%s: %d %s, want 400 \"Unable to reach the URL\" saying %q", tc.url, wait, r.Status, r.Body, tc.reason)
				}
			}
		})
	}
	if r := intranet.Do("POST", "/rabbithole/web?wait=true", map[string]any{"url": site.URL + "/bat"}); r.Status != 200 {
		t.Errorf("a reachable page: %d %s", r.Status, r.Body)
	}
	if r := intranet.Do("POST", "/rabbithole/web", map[string]any{"url": site.URL + "/bat"}); r.Status != 200 {
		t.Errorf("a reachable page, read after the answer: %d %s", r.Status, r.Body)
	}
}
