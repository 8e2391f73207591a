package rabbithole

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// DefaultReachTimeout bounds Fetcher.Reach when the fetcher's Timeout is
// longer: the client waits for it before being answered.
const DefaultReachTimeout = 10 * time.Second

// ErrUnreachable is returned by Reach for a URL the server cannot fetch
// from: not http or https, a host that does not resolve, an address the
// rabbit hole refuses, or nothing listening. Its message is the Cat's
// "Unable to reach the URL", followed by the reason.
var ErrUnreachable = errors.New("Unable to reach the URL")

// guardedDialer dials only addresses check accepts. Control runs for every
// address the dialer tries, after resolution and before connecting:
// nothing is sent to a refused address. Fetch and Reach both dial through
// it, so checking a URL first opens no way around the rule.
func guardedDialer(timeout time.Duration, check func(netip.Addr) error) *net.Dialer {
	return &net.Dialer{
		Timeout: timeout,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("%s: %w", address, ErrForbiddenAddress)
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("%s: %w", address, ErrForbiddenAddress)
			}
			return check(ip)
		},
	}
}

// Reach checks, before a page is fetched in the background, that rawURL
// could be: an http or https URL whose host resolves to an address the
// fetcher may dial, with something accepting connections there. It opens
// one connection through the guarded dialer and closes it at once. The
// fetch itself dials again through the same guard, so a DNS answer that
// changes in between gains nothing. Failures wrap ErrUnreachable, and the
// reason's own sentinel (ErrInvalidURL, ErrForbiddenAddress) when it has
// one.
func (f *Fetcher) Reach(ctx context.Context, rawURL string) error {
	u, err := checkURL(rawURL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	check := f.addrCheck()
	if err := checkLiteral(u, check); err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	timeout := DefaultReachTimeout
	if f.Timeout > 0 && f.Timeout < timeout {
		timeout = f.Timeout
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := guardedDialer(timeout, check).DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, reachReason(u.Hostname(), port, timeout, err))
	}
	conn.Close()
	return nil
}

// reachReason turns a dial error into a sentence.
func reachReason(host, port string, timeout time.Duration, err error) error {
	var dns *net.DNSError
	switch {
	case errors.Is(err, ErrForbiddenAddress):
		return err
	case errors.As(err, &dns):
		return fmt.Errorf("the host %s could not be resolved (%s)", host, dns.Err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing accepts connections on %s port %s", host, port)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("%s port %s did not answer within %s", host, port, timeout)
	}
	return fmt.Errorf("could not connect to %s port %s: %w", host, port, err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
