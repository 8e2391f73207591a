package api

import (
	"testing"

	"github.com/grin-ai/grin/platform/rabbithole"
)

// TestPrepareThenWith: a server prepared before its services exist takes
// the upload limit it was prepared with, and refuses to be given them
// twice (a second set would replace the first under requests already
// running) or an ingester with another limit.
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

// TestPrepareRefusesAnotherUploadLimit: the HTTP layer's body limit and
// the ingester's are one figure; given two, With says so rather than let
// one of them turn away what the other accepts.
func TestPrepareRefusesAnotherUploadLimit(t *testing.T) {
	ingester := func(n int64) *rabbithole.Ingester {
		return rabbithole.NewIngester(nil, nil, nil, nil, nil, nil, nil, rabbithole.Limits{MaxBytes: n}, nil)
	}
	Prepare(10 << 20).With(Deps{Ingester: ingester(10 << 20)}) // the same: accepted
	defer func() {
		if recover() == nil {
			t.Error("a server prepared for 10 MiB took an ingester of 20 MiB")
		}
	}()
	Prepare(10 << 20).With(Deps{Ingester: ingester(20 << 20)})
}
