// Package admin serves grin's web admin panel: static files embedded in
// the binary (no CDN, works offline) that call the public API with the
// logged-in user's token, so the panel can do nothing the API would refuse
// that user.
package admin

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Handler serves the panel at /admin (index) and /admin/assets/….
func Handler() http.Handler {
	sub, _ := fs.Sub(assets, "assets")
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/admin" {
			http.ServeFileFS(w, r, sub, "index.html")
			return
		}
		http.StripPrefix("/admin/", files).ServeHTTP(w, r)
	})
}
