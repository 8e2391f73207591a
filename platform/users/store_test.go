package users_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/grin-ai/grin/platform/database/databasetest"
	"github.com/grin-ai/grin/platform/users"
	"github.com/grin-ai/grin/policies"
)

// TestStore runs the user directory's behaviour suite on SQLite and on
// PostgreSQL: each case gets a new, empty database of the engine, a new
// policy and the default users.
func TestStore(t *testing.T) {
	databasetest.Suite(t, newStore, []databasetest.Case[*users.Store]{
		{Name: "users are created, found, logged in and named uniquely", Run: testCreateAndFind},
		{Name: "look-alike usernames are refused, also when created at once", Run: testLookAlikes},
		{Name: "lists search, sort and page", Run: testList},
		{Name: "renames, password changes, revocations and deletions", Run: testChanges},
	}...)
}

// newStore opens the user directory on db, with a new policy and the
// default users.
func newStore(t *testing.T, db *sql.DB) *users.Store {
	t.Helper()
	policy, err := policies.Open(context.Background(), t.TempDir(), db, nil, policies.WithUsers(users.NewDirectory(db)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := users.New(db, policy, users.WithBcryptCost(bcrypt.MinCost))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Bootstrap(context.Background(), "admin-password", ""); err != nil {
		t.Fatal(err)
	}
	return s
}

func create(t *testing.T, s *users.Store, name string) users.User {
	t.Helper()
	u, err := s.Create(context.Background(), name, "password", policies.BaseDict())
	if err != nil {
		t.Fatalf("create %q: %v", name, err)
	}
	return u
}

func testCreateAndFind(t *testing.T, s *users.Store) {
	ctx := context.Background()
	// "é" as e and a combining accent is stored as one code point.
	u := create(t, s, "Ame\u0301lie")
	if u.Username != "Amélie" {
		t.Errorf("stored as %q", u.Username)
	}
	if got, err := s.ByUsername(ctx, "Amélie"); err != nil || got.ID != u.ID {
		t.Errorf("by username: %+v %v", got, err)
	}
	if got, err := s.Get(ctx, u.ID); err != nil || got.Username != "Amélie" || !got.Permissions.Has(policies.Memory, policies.Read) {
		t.Errorf("get: %+v %v", got, err)
	}
	if _, err := s.Get(ctx, "no-such-id"); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("an unknown id: %v", err)
	}
	if _, err := s.Create(ctx, "Amélie", "password", nil); !errors.Is(err, users.ErrDuplicate) {
		t.Errorf("the same name again: %v", err)
	}
	if got, err := s.Authenticate(ctx, "Ame\u0301lie", "password"); err != nil || got.ID != u.ID {
		t.Errorf("log in: %+v %v", got, err)
	}
	for _, c := range [][2]string{{"Amélie", "wrong"}, {"nobody", "password"}, {"user", ""}} {
		if _, err := s.Authenticate(ctx, c[0], c[1]); !errors.Is(err, users.ErrBadCredentials) {
			t.Errorf("log in as %q with %q: %v", c[0], c[1], err)
		}
	}
	when := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	if err := s.RecordLogin(ctx, u.ID, when); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, u.ID); !got.LastLogin.Equal(when) {
		t.Errorf("last login %v, want %v", got.LastLogin, when)
	}
	if ok, err := s.Exists(ctx, u.ID); !ok || err != nil {
		t.Errorf("exists: %v %v", ok, err)
	}
}

func testLookAlikes(t *testing.T, s *users.Store) {
	ctx := context.Background()
	if _, err := s.Create(ctx, "\u0430dmin", "password", nil); !errors.Is(err, users.ErrConfusable) || !strings.Contains(err.Error(), `"admin"`) {
		t.Errorf("a Cyrillic look-alike of admin: %v", err)
	}
	// Many look-alikes of one new name at once: exactly one is created.
	names := []string{"paypal", "paypa1", "PAYPAL", "pаypal", "paypаl", "раураl"}
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, n := range names {
		wg.Go(func() { _, errs[i] = s.Create(ctx, n, "password", nil) })
	}
	wg.Wait()
	var made []string
	for i, err := range errs {
		switch {
		case err == nil:
			made = append(made, names[i])
		case !errors.Is(err, users.ErrConfusable) && !errors.Is(err, users.ErrDuplicate):
			t.Errorf("%q: %v", names[i], err)
		}
	}
	skeletons := map[string]bool{}
	for _, n := range made {
		skeletons[users.Skeleton(n)] = true
	}
	if len(made) != len(skeletons) {
		t.Errorf("look-alikes created together: %q", made)
	}
}

func testList(t *testing.T, s *users.Store) {
	ctx := context.Background()
	for _, n := range []string{"bob", "Carol", "alice", "dan_1", "dan21", "Émile"} {
		create(t, s, n)
	}
	bob, _ := s.ByUsername(ctx, "bob")
	s.RecordLogin(ctx, bob.ID, time.Now().Add(-time.Minute))
	alice, _ := s.ByUsername(ctx, "alice")
	s.RecordLogin(ctx, alice.ID, time.Now())
	names := func(q users.Query) (string, int) {
		t.Helper()
		page, total, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, u := range page {
			out = append(out, u.Username)
		}
		return strings.Join(out, " "), total
	}
	for _, c := range []struct {
		q     users.Query
		want  string
		total int
	}{
		{users.Query{Limit: 100}, "admin user bob Carol alice dan_1 dan21 Émile", 8},
		{users.Query{Limit: 100, Sort: users.ByCreatedDesc}, "Émile dan21 dan_1 alice Carol bob user admin", 8},
		// ASCII letters in either case sort together; others by code point.
		{users.Query{Limit: 100, Sort: users.ByUsername}, "admin alice bob Carol dan21 dan_1 user Émile", 8},
		{users.Query{Limit: 100, Sort: users.ByUsernameDesc}, "Émile user dan_1 dan21 Carol bob alice admin", 8},
		{users.Query{Limit: 3, Sort: users.ByLastLoginDesc}, "alice bob admin", 8},
		{users.Query{Limit: 2, Skip: 2, Sort: users.ByUsername}, "bob Carol", 8},
		// Search ignores the case of ASCII letters; _ and % are letters.
		{users.Query{Limit: 100, Search: "CAR"}, "Carol", 1},
		{users.Query{Limit: 100, Search: "n_"}, "dan_1", 1},
		{users.Query{Limit: 100, Search: "%"}, "", 0},
		{users.Query{Limit: 100, Search: "émile"}, "", 0},
		{users.Query{Limit: 100, Search: bob.ID}, "bob", 1},
	} {
		got, total := names(c.q)
		if got != c.want || total != c.total {
			t.Errorf("%+v: %q of %d, want %q of %d", c.q, got, total, c.want, c.total)
		}
	}
	if _, _, err := s.List(ctx, users.Query{Limit: 1, Sort: "shoe_size"}); !errors.Is(err, users.ErrInvalid) {
		t.Errorf("an unknown order: %v", err)
	}
}

func testChanges(t *testing.T, s *users.Store) {
	ctx := context.Background()
	u := create(t, s, "bob")
	create(t, s, "carol")
	var revoked []string
	s.OnRevoke(func(_ context.Context, id string, epoch int64) {
		revoked = append(revoked, fmt.Sprint(id == u.ID, epoch))
	})
	for _, c := range []struct {
		name string
		want error
	}{{"carol", users.ErrDuplicate}, {"caro1", users.ErrConfusable}, {"robert", nil}} {
		name := c.name
		if _, err := s.Update(ctx, u.ID, users.Changes{Username: &name}); !errors.Is(err, c.want) {
			t.Errorf("rename to %q: %v, want %v", name, err, c.want)
		}
	}
	if got, err := s.Get(ctx, u.ID); err != nil || got.Username != "robert" {
		t.Errorf("after the renames: %+v %v", got, err)
	}
	password := "new password"
	if _, err := s.Update(ctx, u.ID, users.Changes{Password: &password}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "robert", "password"); !errors.Is(err, users.ErrBadCredentials) {
		t.Errorf("the old password: %v", err)
	}
	if _, err := s.Authenticate(ctx, "robert", password); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if err := s.RevokeTokens(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if epoch, ok, err := s.TokenEpoch(ctx, u.ID); epoch != 2 || !ok || err != nil {
		t.Errorf("token epoch %d %v %v", epoch, ok, err)
	}
	if strings.Join(revoked, ",") != "true 1,true 2" {
		t.Errorf("revocations told: %v", revoked)
	}
	if _, err := s.Delete(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Exists(ctx, u.ID); ok || err != nil {
		t.Errorf("a deleted user exists: %v %v", ok, err)
	}
	if _, err := s.Delete(ctx, u.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("deleting again: %v", err)
	}
	if err := s.RevokeTokens(ctx, u.ID); !errors.Is(err, users.ErrNotFound) {
		t.Errorf("revoking a deleted user's tokens: %v", err)
	}
}
