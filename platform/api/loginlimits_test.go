package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app"
	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/config"
)

// loginAnswer is what a login got back.
type loginAnswer struct {
	status     int
	retryAfter string
	detail     string
}

// loginFrom logs in over a connection from the loopback address ip
// (127.0.0.2, 127.0.0.3, …: all of 127/8 is this machine), so that the
// server sees a client of its own.
// forwardedFor, when given, is sent as X-Forwarded-For.
func loginFrom(t *testing.T, in *apptest.Instance, ip, username, password string, forwardedFor ...string) loginAnswer {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	req, _ := http.NewRequest("POST", in.URL+"/auth/token", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if len(forwardedFor) > 0 {
		req.Header.Set("X-Forwarded-For", forwardedFor[0])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("login from %s: %v", ip, err)
		return loginAnswer{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p struct {
		Detail string `json:"detail"`
	}
	json.Unmarshal(b, &p)
	return loginAnswer{resp.StatusCode, resp.Header.Get("Retry-After"), p.Detail}
}

func limitedLogins(t *testing.T, l config.Login, opts ...app.Option) *apptest.Instance {
	cfg := apptest.Config(t.TempDir())
	cfg.Login = l
	in := apptest.StartWith(t, cfg, opts...)
	in.App.Login.FailDelay = time.Millisecond
	return in
}

// TestLoginSprayFromOneAddress: a burst of logins with made-up usernames
// from one address gets 429 with Retry-After beyond the address's limits,
// and a user elsewhere still logs in.
func TestLoginSprayFromOneAddress(t *testing.T) {
	in := limitedLogins(t, config.Login{PerAddress: 1, PerMinute: 1, Burst: 3})
	var wg sync.WaitGroup
	answers := make([]loginAnswer, 30)
	for i := range answers {
		wg.Go(func() { answers[i] = loginFrom(t, in, "127.0.0.1", fmt.Sprintf("spray-%d", i), "guess") })
	}
	wg.Wait()
	checked, refused := 0, 0
	for _, a := range answers {
		switch a.status {
		case http.StatusForbidden:
			checked++
		case http.StatusTooManyRequests:
			refused++
			if a.retryAfter == "" || !strings.Contains(a.detail, "your address") || !strings.Contains(a.detail, "try again") {
				t.Errorf("429 without Retry-After or a sentence: %+v", a)
			}
		default:
			t.Errorf("a sprayed login: %+v, want 403 or 429", a)
		}
	}
	// 3 at once, then one a minute.
	if checked > 4 || refused == 0 {
		t.Errorf("%d of 30 sprayed logins were checked and %d refused; want at most the burst of 3 (and one a minute) checked", checked, refused)
	}
	if a := loginFrom(t, in, "127.0.0.2", "admin", apptest.AdminPassword); a.status != 200 {
		t.Errorf("the admin from another address during the spray: %+v, want 200", a)
	}
}

// TestLoginLimitsIgnoreWhetherUsersExist: known and unknown usernames get
// the same answers, in the same order, so the limits tell no one which
// usernames exist.
func TestLoginLimitsIgnoreWhetherUsersExist(t *testing.T) {
	in := limitedLogins(t, config.Login{PerAddress: 1, PerMinute: 1, Burst: 4})
	run := func(ip, username string) []string {
		var got []string
		for range 6 {
			a := loginFrom(t, in, ip, username, "wrong-password")
			got = append(got, fmt.Sprintf("%d retry-after=%t %s", a.status, a.retryAfter != "", a.detail))
		}
		return got
	}
	known := run("127.0.0.3", "user")
	unknown := run("127.0.0.4", "nobody-by-this-name")
	if strings.Join(known, "\n") != strings.Join(unknown, "\n") {
		t.Errorf("known username:\n%s\nunknown username:\n%s\nwant the same answers", strings.Join(known, "\n"), strings.Join(unknown, "\n"))
	}
	if !strings.HasPrefix(known[0], "403") || !strings.HasPrefix(known[5], "429 retry-after=true") {
		t.Errorf("answers %q: want 403 first and 429 with Retry-After past the burst", known)
	}
}

// TestLoginChecksAreBounded: many clients at once cannot have more
// password checks run than the server allows; the excess waits a little or
// is refused with 429 and Retry-After, whether the usernames exist or not.
func TestLoginChecksAreBounded(t *testing.T) {
	// A real bcrypt cost, so that checks take long enough to overlap.
	in := limitedLogins(t, config.Login{Concurrent: 1, PerAddress: 1, PerMinute: 60, Burst: 10}, app.WithBcryptCost(10))
	var wg sync.WaitGroup
	answers := make([]loginAnswer, 40)
	for i := range answers {
		ip := fmt.Sprintf("127.0.1.%d", i+1)
		name := "user"
		if i%2 == 1 {
			name = fmt.Sprintf("nobody-%d", i)
		}
		wg.Go(func() { answers[i] = loginFrom(t, in, ip, name, "wrong-password") })
	}
	wg.Wait()
	busy := 0
	for _, a := range answers {
		switch {
		case a.status == http.StatusTooManyRequests && strings.Contains(a.detail, "busy") && a.retryAfter != "":
			busy++
		case a.status == http.StatusTooManyRequests && strings.Contains(a.detail, "this username"):
			// "user" locked after its sixth failure: a lockout, not load.
		case a.status == http.StatusForbidden:
		default:
			t.Errorf("login under load: %+v", a)
		}
	}
	if busy == 0 {
		t.Errorf("40 logins at once with one check at a time and %d waiting: none was refused as busy", 4)
	}
	if a := loginFrom(t, in, "127.0.0.2", "admin", apptest.AdminPassword); a.status != 200 {
		t.Errorf("the admin after the burst: %+v, want 200", a)
	}
}

// TestForwardedForOnlyFromTrustedProxies: X-Forwarded-For names the
// client only when a configured proxy sends it; anyone else could write
// any address there to escape the per-address limits.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	cfg := config.Login{PerAddress: 1, PerMinute: 1, Burst: 1}
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}
	in := limitedLogins(t, cfg)
	statuses := func(ip string, forwarded ...string) []int {
		var out []int
		for _, f := range forwarded {
			out = append(out, loginFrom(t, in, ip, "nobody", "guess", f).status)
		}
		return out
	}
	// A client that claims other addresses is still one client.
	if got := statuses("127.0.0.6", "198.51.100.1", "198.51.100.2"); got[1] != http.StatusTooManyRequests {
		t.Errorf("untrusted sender, two forwarded addresses: %v, want the second refused", got)
	}
	// Through the proxy, each forwarded client has its own limits.
	if got := statuses("127.0.0.5", "198.51.100.1", "10.1.1.1, 198.51.100.2", "198.51.100.1"); got[0] != 403 || got[1] != 403 || got[2] != http.StatusTooManyRequests {
		t.Errorf("trusted proxy: %v, want two clients checked and the first one's second login refused", got)
	}
}

// TestLoginThrottleSharedByInstances: two instances on one database, as
// two replicas: failed logins through both add up and lock the username
// out on both, and one address's rate of logins is counted across both.
func TestLoginThrottleSharedByInstances(t *testing.T) {
	cfg := apptest.Config(t.TempDir())
	cfg.Login = config.Login{PerAddress: 10, PerMinute: 1, Burst: 5}
	a, b := apptest.StartWith(t, cfg), apptest.StartWith(t, cfg)
	for _, in := range []*apptest.Instance{a, b} {
		in.App.Login.FailDelay = time.Millisecond
	}
	// Six failures, from six addresses, half through each.
	for i := range 6 {
		in := []*apptest.Instance{a, b}[i%2]
		if got := loginFrom(t, in, fmt.Sprintf("127.0.1.%d", i+1), "admin", "guess"); got.status != http.StatusForbidden {
			t.Fatalf("failure %d: %+v", i+1, got)
		}
	}
	for name, in := range map[string]*apptest.Instance{"a": a, "b": b} {
		got := loginFrom(t, in, "127.0.2.1", "admin", apptest.AdminPassword)
		if got.status != http.StatusTooManyRequests || got.retryAfter == "" || !strings.Contains(got.detail, "failed logins for this username") {
			t.Errorf("the right password through %s while locked: %+v, want 429 locked", name, got)
		}
	}
	// One address: a burst of 5 logins, wherever they land.
	var answers []string
	for i := range 8 {
		in := []*apptest.Instance{a, b}[i%2]
		got := loginFrom(t, in, "127.0.3.1", "user", apptest.UserPassword)
		answers = append(answers, fmt.Sprint(got.status))
		if got.status == http.StatusTooManyRequests && !strings.Contains(got.detail, "too many logins from your address") {
			t.Errorf("login %d: %+v", i+1, got)
		}
	}
	if got := strings.Join(answers, " "); got != "200 200 200 200 200 429 429 429" {
		t.Errorf("8 logins from one address through two instances: %s, want the burst of 5 then 429", got)
	}
}
