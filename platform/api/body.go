package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
)

// limitBody cuts every request body at its operation's MaxBodyBytes while
// it streams, reads multipart forms itself, and removes a form's
// temporary files when the operation ends, whatever its outcome.
//
// huma applies MaxBodyBytes only to bodies it buffers, not to multipart
// forms, and it parses a form on the request it was handed. That request
// is a copy (authorize's huma.WithContext, trimTrailingSlash's clone),
// while net/http removes the files of the request it made: without this,
// a form's files (every part over humago.MultipartMaxMemory goes to disk)
// stayed in the temporary directory for ever, and an upload of any size
// was written there whole before a handler could refuse it.
//
// It runs after authorize, so nothing is read for a caller the policy
// refuses. huma's own ParseMultipartForm then finds the form already
// read and uses it.
func (s *Server) limitBody(ctx huma.Context, next func(huma.Context)) {
	op := ctx.Operation()
	r, w := humago.Unwrap(ctx)
	limit := op.MaxBodyBytes
	if limit > 0 && r.Body != nil {
		// On the real response writer, so net/http also closes the
		// connection after the answer instead of draining the rest.
		r.Body = http.MaxBytesReader(w, r.Body, limit)
	}
	if op.RequestBody == nil || op.RequestBody.Content["multipart/form-data"] == nil {
		next(ctx)
		return
	}
	defer func() {
		if r.MultipartForm != nil {
			if err := r.MultipartForm.RemoveAll(); err != nil {
				s.deps.Logger.WarnContext(r.Context(), "removing an upload's temporary files", "path", r.URL.Path, "err", err)
			}
		}
	}()
	if err := r.ParseMultipartForm(humago.MultipartMaxMemory); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			huma.WriteErr(s.api, ctx, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("the request is larger than %s, the most %s accepts; nothing was stored", mib(tooLarge.Limit), op.Path))
		case errors.Is(err, http.ErrNotMultipart):
			huma.WriteErr(s.api, ctx, http.StatusUnsupportedMediaType,
				fmt.Sprintf("send the file as multipart/form-data (curl -F file=@name), not as %q", r.Header.Get("Content-Type")))
		default:
			huma.WriteErr(s.api, ctx, http.StatusUnprocessableEntity, "the body is not a readable multipart form: "+err.Error())
		}
		return
	}
	next(ctx)
}

// mib writes a byte count in MiB, as limits are configured.
func mib(n int64) string {
	return fmt.Sprintf("%.4g MiB", float64(n)/(1<<20))
}
