package rabbithole

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Fetcher defaults, used where a field is zero.
const (
	DefaultFetchMaxBytes = 10 << 20
	DefaultFetchTimeout  = 30 * time.Second
	DefaultMaxRedirects  = 5
	DefaultUserAgent     = "grin-rabbithole/1"
)

var (
	// ErrForbiddenAddress is returned for a URL whose host is, or
	// resolves to, an address inside the server's own networks. Letting
	// a chat user make the server fetch such URLs would open the
	// operator's internal services and the cloud metadata endpoint
	// (169.254.169.254) to anyone who can chat.
	ErrForbiddenAddress = errors.New("the address is private, loopback or otherwise internal, which the rabbit hole does not fetch from; an operator can allow it with GRIN_RABBITHOLE_ALLOW_PRIVATE=1")
	// ErrInvalidURL is returned for URLs that are not plain http or https
	// addresses of a host, or that carry credentials.
	ErrInvalidURL = errors.New("invalid URL")
	// ErrTooManyRedirects is returned when a page redirects more often
	// than Fetcher.MaxRedirects allows.
	ErrTooManyRedirects = errors.New("too many redirects")
)

// StatusError is returned for an answer outside 2xx.
type StatusError struct {
	URL        string
	StatusCode int
	Status     string // "404 Not Found"
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("fetch %s: the server answered %s", e.URL, e.Status)
}

// Page is a fetched web page.
type Page struct {
	// URL is the page's address after redirects.
	URL string
	// ContentType is the server's Content-Type header, parameters and
	// all, to hand to Parse.
	ContentType string
	Body        []byte
}

// Fetcher downloads pages for /rabbithole/web. The zero value is ready to
// use with the defaults above and refuses internal addresses.
//
// The address rule is enforced where it cannot be dodged: on the IP
// address of every connection as it is dialed, after DNS resolution. A
// name that resolves to a private address, a redirect to one, and DNS
// answers that change between check and use are all refused alike.
// Proxies from the environment are not used, since a proxy would dial in
// the fetcher's place.
//
// Notes: safe for concurrent use; each Fetch has its own connections.
type Fetcher struct {
	// AllowPrivate lets the fetcher reach loopback, private, link-local
	// and other internal addresses (GRIN_RABBITHOLE_ALLOW_PRIVATE), for
	// deployments whose documents live on an intranet.
	AllowPrivate bool
	// MaxBytes caps the body (default DefaultFetchMaxBytes); a larger
	// page fails with ErrTooLarge.
	MaxBytes int64
	// Timeout bounds the whole fetch, redirects and body included
	// (default DefaultFetchTimeout).
	Timeout time.Duration
	// MaxRedirects is how many redirects are followed (default
	// DefaultMaxRedirects; negative follows none).
	MaxRedirects int
	// UserAgent is sent with every request (default DefaultUserAgent).
	UserAgent string

	// checkAddr, when set, replaces the address rule: tests use it to
	// treat their loopback server as public.
	checkAddr func(netip.Addr) error
}

// Fetch downloads rawURL, following redirects, and returns the final page.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (Page, error) {
	u, err := checkURL(rawURL)
	if err != nil {
		return Page{}, fmt.Errorf("fetch %s: %w", redact(rawURL), err)
	}
	limit := f.MaxBytes
	if limit <= 0 {
		limit = DefaultFetchMaxBytes
	}
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	redirects := f.MaxRedirects
	switch {
	case redirects == 0:
		redirects = DefaultMaxRedirects
	case redirects < 0:
		redirects = 0
	}
	agent := f.UserAgent
	if agent == "" {
		agent = DefaultUserAgent
	}
	check := f.addrCheck()
	if err := checkLiteral(u, check); err != nil {
		return Page{}, fmt.Errorf("fetch %s: %w", u.Redacted(), err)
	}

	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dialer := guardedDialer(timeout, check)
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		DisableKeepAlives:      true,
		TLSHandshakeTimeout:    timeout,
		MaxResponseHeaderBytes: 1 << 20,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > redirects {
				return fmt.Errorf("%w: stopped after %d", ErrTooManyRedirects, redirects)
			}
			if _, err := checkURL(req.URL.String()); err != nil {
				return fmt.Errorf("redirect to %s: %w", redact(req.URL.String()), err)
			}
			if err := checkLiteral(req.URL, check); err != nil {
				return fmt.Errorf("redirect to %s: %w", redact(req.URL.String()), err)
			}
			return nil
		},
	}

	req, err := http.NewRequestWithContext(fctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Page{}, fmt.Errorf("fetch %s: %w: %w", u, ErrInvalidURL, err)
	}
	req.Header.Set("User-Agent", agent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,text/plain;q=0.9,text/markdown;q=0.9,application/pdf;q=0.8,application/json;q=0.8,*/*;q=0.5")
	resp, err := client.Do(req)
	if err != nil {
		return Page{}, fetchError(ctx, fctx, u, timeout, err)
	}
	defer resp.Body.Close()
	final := resp.Request.URL.String()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Page{}, &StatusError{URL: final, StatusCode: resp.StatusCode, Status: resp.Status}
	}
	tooLarge := fmt.Errorf("fetch %s: %w: the limit is %s", final, ErrTooLarge, formatBytes(limit))
	if resp.ContentLength > limit {
		return Page{}, tooLarge
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return Page{}, fetchError(ctx, fctx, u, timeout, err)
	}
	if int64(len(body)) > limit {
		return Page{}, tooLarge
	}
	return Page{URL: final, ContentType: resp.Header.Get("Content-Type"), Body: body}, nil
}

// fetchError says why a fetch failed: the caller's context, the fetch's
// own timeout, or what the client reported.
func fetchError(parent, fctx context.Context, u *url.URL, timeout time.Duration, err error) error {
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("fetch %s: %w", u, parent.Err())
	case fctx.Err() != nil:
		return fmt.Errorf("fetch %s: no complete answer within %s: %w", u, timeout, context.DeadlineExceeded)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("fetch %s: %w", u, err)
}

// addrCheck returns the rule for addresses to dial.
func (f *Fetcher) addrCheck() func(netip.Addr) error {
	switch {
	case f.checkAddr != nil:
		return f.checkAddr
	case f.AllowPrivate:
		return func(netip.Addr) error { return nil }
	}
	return checkPublic
}

// checkURL parses rawURL and refuses what the rabbit hole never fetches:
// other schemes than http and https, URLs without a host, and URLs with
// credentials, which would be sent to whatever host they name and end up
// in logs.
func checkURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(rawURL))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w: only http and https URLs can be fetched, got %q", ErrInvalidURL, u.Scheme)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: URLs with credentials (user:password@) are refused", ErrInvalidURL)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	return u, nil
}

// redact returns rawURL for an error message, without credentials.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return strconv.Quote(rawURL)
	}
	u.User = nil
	return strconv.Quote(u.String())
}

// checkLiteral applies check to a URL whose host is an IP address, so such
// URLs are refused before any connection is attempted. Names are checked
// as they are dialed.
func checkLiteral(u *url.URL, check func(netip.Addr) error) error {
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return nil
	}
	return check(ip)
}

// internal are address ranges beyond what netip's predicates cover that
// no public web page lives in.
var internal = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "a \"this network\" address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("100::/64"), "a discard address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a local NAT64 address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
}

// IPv6 ranges that carry an IPv4 address a gateway would reach: the
// address inside is judged instead.
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
	compat = netip.MustParsePrefix("::/96")
)

// checkPublic refuses loopback, private (RFC 1918, IPv6 ULA), link-local
// (the cloud metadata endpoint among them), unspecified, multicast,
// carrier-grade NAT and other internal addresses.
func checkPublic(ip netip.Addr) error {
	ip = ip.WithZone("").Unmap()
	refuse := func(what string) error { return fmt.Errorf("%s is %s: %w", ip, what, ErrForbiddenAddress) }
	switch {
	case !ip.IsValid():
		return fmt.Errorf("invalid address: %w", ErrForbiddenAddress)
	case ip.IsLoopback():
		return refuse("a loopback address")
	case ip.IsPrivate():
		return refuse("a private address")
	case ip.IsLinkLocalUnicast():
		return refuse("a link-local address")
	case ip.IsUnspecified():
		return refuse("the unspecified address")
	case ip.IsMulticast(), ip.IsLinkLocalMulticast(), ip.IsInterfaceLocalMulticast():
		return refuse("a multicast address")
	}
	for _, r := range internal {
		if r.prefix.Contains(ip) {
			return refuse(r.what)
		}
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip), compat.Contains(ip):
			return checkEmbedded(ip, netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(ip):
			return checkEmbedded(ip, netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	return nil
}

// checkEmbedded judges the IPv4 address inside an IPv6 one.
func checkEmbedded(outer, inner netip.Addr) error {
	if err := checkPublic(inner); err != nil {
		return fmt.Errorf("%s carries %w", outer, err)
	}
	return nil
}
