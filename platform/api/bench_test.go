package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/app/apptest"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/policies"
)

// BenchmarkAuthorizedRequest measures one authenticated, authorized request
// (JWT verification, the user's existence, the Casbin decision, and the
// status operation) with 10,000 users and 100,000 grouping rules, served
// in process without a socket.
//
//	first:    every iteration is a different user's first request: nothing
//	          is cached for it, neither the decision nor the user lookup
//	repeated: the same user again, as in a chat session
func BenchmarkAuthorizedRequest(b *testing.B) {
	ctx := context.Background()
	in := apptest.Start(b)
	ids := seedUsers(b, in, 10_000)
	if err := in.Policy.Reload(ctx); err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, len(ids))
	for i, id := range ids {
		tok, err := in.Auth.Tokens().Issue(id, fmt.Sprint("u", i), nil, 0)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = "Bearer " + tok
	}
	request := func(tok string) {
		// A loopback host: the open mode refuses requests naming another.
		req := httptest.NewRequest("GET", "http://127.0.0.1/", nil)
		req.Header.Set("Authorization", tok)
		w := httptest.NewRecorder()
		in.Handler.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.Run("first", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if i > 0 && i%len(ids) == 0 {
				// Every user has been seen: start over with a fresh
				// policy (and so an empty decision cache).
				b.StopTimer()
				if err := in.Policy.Reload(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			request(tokens[i%len(tokens)])
		}
	})
	b.Run("repeated", func(b *testing.B) {
		for b.Loop() {
			request(tokens[7])
		}
	})
}

// seedUsers writes n users with the base permissions plus USERS READ (10
// grants each) straight into the database, as fast as SQL allows.
func seedUsers(b *testing.B, in *apptest.Instance, n int) []string {
	b.Helper()
	ctx := context.Background()
	db, err := database.Open(ctx, in.Dir)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	d := policies.BaseDict()
	d[policies.Users] = []policies.Permission{policies.Read}
	var roles []string
	for r, ps := range d {
		for _, p := range ps {
			roles = append(roles, policies.PermissionRole(r, p))
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, '', 0)`, ids[i], fmt.Sprint("bench", i)); err != nil {
			b.Fatal(err)
		}
		for _, r := range roles {
			if _, err := tx.ExecContext(ctx, `INSERT INTO grants (subject, role) VALUES (?, ?)`, ids[i], r); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return ids
}

// BenchmarkChatTurn measures whole chat turns over HTTP (POST /message:
// recall from three collections, the offline model, storing the message)
// on each memory backend, users taking turns among 100, each with some
// history. p50 and p99 are per turn, from the client.
//
//	go test ./platform/api -run '^$' -bench ChatTurn -benchtime 1000x
func BenchmarkChatTurn(b *testing.B) {
	for _, backend := range apptest.Backends() {
		b.Run(backend.Name, func(b *testing.B) {
			in := backend.Start(b)
			const users = 100
			turn := func(u, i int) {
				r := in.Do("POST", "/message", map[string]any{"text": fmt.Sprintf("note %d: user %d likes topic %d", i, u, i%7)}, "user_id", fmt.Sprintf("user-%03d", u))
				if r.Status != http.StatusOK {
					b.Fatalf("turn: %d %s", r.Status, r.Body)
				}
			}
			for u := range users {
				for i := range 5 {
					turn(u, i)
				}
			}
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				t0 := time.Now()
				turn(i%users, 5+i/users)
				lat = append(lat, time.Since(t0))
				i++
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
