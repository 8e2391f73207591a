package rabbithole

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Every server here listens on loopback, and no test dials anything else:
// the classifier is tested on addresses alone.

// asPublic treats the test server's 127.0.0.1 as a public address and
// judges every other address by the real rule.
func asPublic(ip netip.Addr) error {
	if ip == netip.MustParseAddr("127.0.0.1") {
		return nil
	}
	return checkPublic(ip)
}

// server starts a loopback server and counts the requests it answers.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &hits
}

func hello(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<title>hi</title><p>agent %s</p>", r.UserAgent())
}

func TestFetchRefusesLoopbackByDefault(t *testing.T) {
	s, hits := server(t, hello)
	port := s.URL[strings.LastIndex(s.URL, ":")+1:]
	for _, u := range []string{
		s.URL,                               // a literal address, refused before dialing
		"http://localhost:" + port + "/",    // a name, refused as it is dialed
		"http://[::ffff:127.0.0.1]:" + port, // loopback dressed as IPv6
	} {
		_, err := (&Fetcher{}).Fetch(context.Background(), u)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("Fetch(%s): err = %v, want ErrForbiddenAddress", u, err)
			continue
		}
		if !strings.Contains(err.Error(), "GRIN_RABBITHOLE_ALLOW_PRIVATE") || !strings.Contains(err.Error(), "loopback") {
			t.Errorf("Fetch(%s): error %q does not say why or how to allow it", u, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the refused server was reached %d times", n)
	}
}

func TestFetchAllowPrivate(t *testing.T) {
	s, _ := server(t, hello)
	f := &Fetcher{AllowPrivate: true, UserAgent: "grin-test/1"}
	page, err := f.Fetch(context.Background(), s.URL+"/page")
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if page.URL != s.URL+"/page" {
		t.Errorf("URL = %q", page.URL)
	}
	if page.ContentType != "text/html; charset=utf-8" {
		t.Errorf("ContentType = %q", page.ContentType)
	}
	if want := "<title>hi</title><p>agent grin-test/1</p>"; string(page.Body) != want {
		t.Errorf("Body = %q, want %q", page.Body, want)
	}
	// The page goes straight on to Parse, as the server does.
	doc, err := Parse(context.Background(), page.URL, page.ContentType, strings.NewReader(string(page.Body)), 1<<20)
	if err != nil || doc.Title != "hi" || !strings.Contains(doc.Text, "agent grin-test/1") {
		t.Errorf("Parse(page) = %+v, %v", doc, err)
	}
}

// redirector answers /r/N with a redirect to /r/N-1, and /r/0 with a page.
func redirector(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/r/"))
	if err != nil || n < 0 {
		http.NotFound(w, r)
		return
	}
	if n == 0 {
		fmt.Fprint(w, "arrived")
		return
	}
	http.Redirect(w, r, "/r/"+strconv.Itoa(n-1), http.StatusFound)
}

func TestFetchRedirectLimit(t *testing.T) {
	s, _ := server(t, redirector)
	cases := []struct {
		name     string
		max      int
		start    int
		tooMany  bool
		finalURL string
	}{
		{"within the limit", 3, 3, false, "/r/0"},
		{"over the limit", 3, 4, true, ""},
		{"default allows 5", 0, 5, false, "/r/0"},
		{"default refuses 6", 0, 6, true, ""},
		{"negative follows none", -1, 1, true, ""},
		{"negative, no redirect needed", -1, 0, false, "/r/0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &Fetcher{MaxRedirects: c.max, checkAddr: asPublic}
			page, err := f.Fetch(context.Background(), s.URL+"/r/"+strconv.Itoa(c.start))
			if c.tooMany {
				if !errors.Is(err, ErrTooManyRedirects) {
					t.Fatalf("err = %v, want ErrTooManyRedirects", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if page.URL != s.URL+c.finalURL || string(page.Body) != "arrived" {
				t.Errorf("page = %q %q", page.URL, page.Body)
			}
		})
	}
}

func TestFetchRefusesBadRedirects(t *testing.T) {
	target, targetHits := server(t, hello)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(target.URL, "http://"))
	cases := []struct {
		name, location string
		want           error
	}{
		// 127.0.0.2 is loopback: were the rule broken, the test would
		// still never leave the machine.
		{"to a private address", "http://127.0.0.2:" + port + "/", ErrForbiddenAddress},
		{"to the metadata endpoint", "http://169.254.169.254/latest/meta-data/", ErrForbiddenAddress},
		{"to localhost by name", "http://localhost:" + port + "/", ErrForbiddenAddress},
		{"to a file", "file:///etc/passwd", ErrInvalidURL},
		{"to ftp", "ftp://127.0.0.1:" + port + "/", ErrInvalidURL},
		{"with credentials", "http://user:pw@127.0.0.1:" + port + "/", ErrInvalidURL},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The redirecting server's address counts as public until
			// it has answered; from then on, every address meets the
			// real rule. (Both servers are 127.0.0.1.)
			var answered atomic.Bool
			s, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
				answered.Store(true)
				http.Redirect(w, r, c.location, http.StatusFound)
			})
			f := &Fetcher{checkAddr: func(ip netip.Addr) error {
				if !answered.Load() {
					return asPublic(ip)
				}
				return checkPublic(ip)
			}}
			_, err := f.Fetch(context.Background(), s.URL)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q repeats the credentials", err)
			}
			if hits.Load() != 1 {
				t.Errorf("the redirecting server answered %d times, want 1", hits.Load())
			}
			t.Log(err)
		})
	}
	if n := targetHits.Load(); n != 0 {
		t.Errorf("a redirect target was reached %d times", n)
	}
}

func TestFetchTooLarge(t *testing.T) {
	body := strings.Repeat("x", 2000)
	cases := []struct {
		name    string
		chunked bool
		max     int64
		tooBig  bool
	}{
		{"declared length over the limit", false, 1000, true},
		{"streamed body over the limit", true, 1000, true},
		{"exactly the limit", false, 2000, false},
		{"streamed, exactly the limit", true, 2000, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
				if !c.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
					fmt.Fprint(w, body)
					return
				}
				for i := 0; i < len(body); i += 500 {
					fmt.Fprint(w, body[i:i+500])
					w.(http.Flusher).Flush()
				}
			})
			page, err := (&Fetcher{MaxBytes: c.max, checkAddr: asPublic}).Fetch(context.Background(), s.URL)
			if c.tooBig {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("err = %v, want ErrTooLarge", err)
				}
				if !strings.Contains(err.Error(), "1000 bytes") {
					t.Errorf("error %q does not say the limit", err)
				}
				return
			}
			if err != nil || len(page.Body) != len(body) {
				t.Fatalf("Fetch = %d bytes, %v", len(page.Body), err)
			}
		})
	}
}

func TestFetchTimeout(t *testing.T) {
	cases := []struct {
		name        string
		sendHeaders bool
	}{
		{"no answer", false},
		{"headers, then a stalled body", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
				if c.sendHeaders {
					fmt.Fprint(w, "partial ")
					w.(http.Flusher).Flush()
				}
				select {
				case <-release:
				case <-r.Context().Done():
				}
			})
			defer close(release) // before the server's Close, which waits for handlers
			f := &Fetcher{Timeout: 50 * time.Millisecond, checkAddr: asPublic}
			_, err := f.Fetch(context.Background(), s.URL)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want a deadline error", err)
			}
			if !strings.Contains(err.Error(), "50ms") {
				t.Errorf("error %q does not say the timeout", err)
			}
		})
	}
}

func TestFetchCanceled(t *testing.T) {
	started := make(chan struct{})
	s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err := (&Fetcher{checkAddr: asPublic}).Fetch(ctx, s.URL)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestFetchStatus(t *testing.T) {
	s, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nothing here", http.StatusNotFound)
	})
	_, err := (&Fetcher{checkAddr: asPublic}).Fetch(context.Background(), s.URL+"/missing")
	var se *StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound {
		t.Fatalf("err = %v, want a 404 StatusError", err)
	}
	if !strings.Contains(err.Error(), "404 Not Found") {
		t.Errorf("error %q does not name the status", err)
	}
}

func TestFetchRefusesURLs(t *testing.T) {
	s, hits := server(t, hello)
	u, _ := url.Parse(s.URL)
	cases := []string{
		"file:///etc/passwd",
		"ftp://" + u.Host + "/file.txt",
		"gopher://" + u.Host + "/",
		"javascript:alert(1)",
		"http://user:pass@" + u.Host + "/",
		"http://user@" + u.Host + "/",
		"http:///no-host",
		"not a url at all",
		"",
	}
	for _, raw := range cases {
		_, err := (&Fetcher{AllowPrivate: true}).Fetch(context.Background(), raw)
		if !errors.Is(err, ErrInvalidURL) {
			t.Errorf("Fetch(%q): err = %v, want ErrInvalidURL", raw, err)
		}
		if strings.Contains(fmt.Sprint(err), "pass@") {
			t.Errorf("Fetch(%q): error %q repeats the credentials", raw, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the server was reached %d times", n)
	}
}

func TestCheckPublic(t *testing.T) {
	cases := []struct {
		addr    string
		refused bool
	}{
		{"10.0.0.1", true},
		{"172.16.5.4", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true},
		{"100.64.0.1", true},
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"0.0.0.0", true},
		{"::", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"ff02::1", true},
		{"255.255.255.255", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"64:ff9b::a00:1", true},    // NAT64 of 10.0.0.1
		{"2002:a9fe:a9fe::1", true}, // 6to4 of 169.254.169.254
		{"::127.0.0.1", true},
		{"8.8.8.8", false},
		{"1.1.1.1", false},
		{"2001:4860:4860::8888", false},
		{"64:ff9b::808:808", false}, // NAT64 of 8.8.8.8
		{"172.32.0.1", false},
		{"100.128.0.1", false},
	}
	for _, c := range cases {
		err := checkPublic(netip.MustParseAddr(c.addr))
		switch {
		case c.refused && !errors.Is(err, ErrForbiddenAddress):
			t.Errorf("checkPublic(%s) = %v, want ErrForbiddenAddress", c.addr, err)
		case !c.refused && err != nil:
			t.Errorf("checkPublic(%s) = %v, want allowed", c.addr, err)
		}
	}
}

// TestFetchDialCheck checks the rule is applied to the address actually
// dialed, whatever the URL says: a name that resolves to a refused address
// is refused at the dial, before anything is sent.
func TestFetchDialCheck(t *testing.T) {
	s, hits := server(t, hello)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(s.URL, "http://"))
	var seen []netip.Addr
	f := &Fetcher{checkAddr: func(ip netip.Addr) error {
		seen = append(seen, ip)
		return fmt.Errorf("test refuses %s: %w", ip, ErrForbiddenAddress)
	}}
	_, err := f.Fetch(context.Background(), "http://localhost:"+port+"/")
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if len(seen) == 0 {
		t.Fatal("the dialed address was never checked")
	}
	for _, ip := range seen {
		if !ip.IsLoopback() {
			t.Errorf("checked %s, not a resolved address of localhost", ip)
		}
	}
	if hits.Load() != 0 {
		t.Error("the server was reached")
	}
}
