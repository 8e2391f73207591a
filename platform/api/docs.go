package api

import (
	"embed"
	"io/fs"
	"net/http"
)

// swaggerAssets is Swagger UI (swagger-ui-dist, Apache-2.0), embedded so
// the documentation page works offline. Its "Authorize" button takes a JWT
// or the API key through the document's security schemes.
//
//go:embed swagger
var swaggerAssets embed.FS

const docsPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>grin API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/init.js"></script>
</body>
</html>`

// docsInit starts Swagger UI on the served document. persistAuthorization
// keeps what the user typed in "Authorize" across reloads (in the page's
// local storage, on their own machine).
const docsInit = `window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  persistAuthorization: true,
  tryItOutEnabled: true,
  deepLinking: true,
  validatorUrl: null
});`

func (s *Server) registerDocs() {
	assets, _ := fs.Sub(swaggerAssets, "swagger")
	secure := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			h.ServeHTTP(w, r)
		})
	}
	s.mux.Handle("GET /docs", secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(docsPage))
	})))
	s.mux.Handle("GET /docs/assets/init.js", secure(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Write([]byte(docsInit))
	})))
	s.mux.Handle("GET /docs/assets/", secure(http.StripPrefix("/docs/assets/", http.FileServerFS(assets))))
}
