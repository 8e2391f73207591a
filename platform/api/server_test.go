package api

import "testing"

// TestPrepareThenWith: a server prepared before its services exist takes
// the upload limit it was prepared with, and refuses to be given them twice (a second set would replace the
// first under requests already running).
func TestPrepareThenWith(t *testing.T) {
	for _, tc := range []struct {
		name      string
		uploadMax int64
		wantBody  int64
	}{
		{"the ingester's limit and a MiB for the form", 10 << 20, 11 << 20},
		{"no limit given: the document's 64 MiB", 0, 64 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Prepare(tc.uploadMax)
			op := p.s.api.OpenAPI().Paths["/rabbithole"].Post
			if op == nil || op.MaxBodyBytes != tc.wantBody {
				t.Fatalf("POST /rabbithole takes bodies up to %v, want %d", op, tc.wantBody)
			}
			if s := p.With(Deps{}); s.handler == nil || s.deps.Logger == nil {
				t.Fatal("With left the server without its handler or logger")
			}
			defer func() {
				if recover() == nil {
					t.Error("a second With was accepted")
				}
			}()
			p.With(Deps{})
		})
	}
}
