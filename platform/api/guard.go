package api

import (
	"net"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// guardOpenMode protects a grin whose authentication is off. It listens on
// loopback only, but a web page the operator visits can still reach it:
// by a cross-site request (a form post, a fetch without preflight), or by
// DNS rebinding (a name of the attacker's that resolves to 127.0.0.1).
// So, while authentication is off, a request must name the server by a
// loopback host, and a browser request must come from the server's own
// origin or an allowed one. With authentication on, requests carry
// credentials that a cross-site page does not have.
func (s *Server) guardOpenMode(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.deps.Auth.Keys().Open() || s.deps.Insecure {
			next.ServeHTTP(w, r)
			return
		}
		if !loopbackHost(r.Host) {
			writeProblem(w, http.StatusForbidden, "authentication is off, so grin answers only requests addressed to a loopback name (localhost, 127.0.0.1); enable authentication to serve other names")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !s.originAllowed(o, r.Host) {
			writeProblem(w, http.StatusForbidden, "authentication is off, so grin refuses requests from other web origins ("+o+"); allow it with GRIN_ALLOWED_ORIGINS, or enable authentication")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// originAllowed reports whether a browser origin is the server's own or
// matches a GRIN_ALLOWED_ORIGINS pattern (host patterns, as for sockets).
func (s *Server) originAllowed(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, pattern := range s.deps.AllowedOrigins {
		if ok, _ := path.Match(strings.ToLower(pattern), strings.ToLower(u.Host)); ok {
			return true
		}
	}
	return false
}
