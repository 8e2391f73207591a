package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grin-ai/grin/platform/audit"
	"github.com/grin-ai/grin/platform/database"
	"github.com/grin-ai/grin/platform/database/databasetest"
)

// TestAuditLog runs the audit log's behaviour suite on SQLite and on
// PostgreSQL: each case gets a new, empty database of the engine.
func TestAuditLog(t *testing.T) {
	databasetest.EachEngine(t, func(t *testing.T, engine database.Engine, open databasetest.Open) {
		cases := []struct {
			name string
			run  func(t *testing.T, db *audit.Store, exec func(q string) error)
		}{
			{"entries are numbered in order and their secrets masked", testAppend},
			{"filters select entries, newest first, page by page", testFilters},
			{"a bad filter is refused in words", testBadFilters},
			{"the database refuses to change an entry or delete a young one", appendOnly(engine)},
			{"pruning deletes only entries older than the retention", testPrune},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				db := open(t)
				c.run(t, audit.New(db), func(q string) error {
					_, err := db.ExecContext(context.Background(), q)
					return err
				})
			})
		}
	})
}

func appendEntry(t *testing.T, s *audit.Store, e audit.Entry) audit.Entry {
	t.Helper()
	got, err := s.Append(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func testAppend(t *testing.T, s *audit.Store, _ func(string) error) {
	ctx := context.Background()
	first := appendEntry(t, s, audit.Entry{Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1", Name: "alice"},
		Address: "192.0.2.1", Action: audit.UserUpdate, Target: "u2",
		Before: json.RawMessage(`{"password":"old-s3cret","username":"bob"}`), After: json.RawMessage(`{"password":"new-s3cret","username":"robert"}`)})
	second := appendEntry(t, s, audit.Entry{Actor: audit.Actor{Kind: audit.ActorAPIKey}, Action: audit.Login, Outcome: audit.Refused, Detail: "wrong password"})
	if first.ID <= 0 || second.ID <= first.ID {
		t.Errorf("ids %d then %d", first.ID, second.ID)
	}
	list, next, err := s.List(ctx, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || next != 0 || list[0].ID != second.ID || list[1].ID != first.ID {
		t.Fatalf("listed %+v, next %d", list, next)
	}
	got := list[1]
	if strings.Contains(string(got.Before)+string(got.After), "s3cret") {
		t.Errorf("a secret is stored: %s %s", got.Before, got.After)
	}
	if !strings.Contains(string(got.After), "robert") || got.Actor != first.Actor || got.Address != "192.0.2.1" ||
		got.Outcome != audit.Success || !got.Time.Equal(first.Time) {
		t.Errorf("read back %+v, appended %+v", got, first)
	}
	if list[0].Before != nil || list[0].Outcome != audit.Refused || list[0].Detail != "wrong password" {
		t.Errorf("an entry without before: %+v", list[0])
	}
}

func testFilters(t *testing.T, s *audit.Store, _ func(string) error) {
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	var ids []int64
	for i, e := range []audit.Entry{
		{Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1", Name: "alice"}, Action: "policy.update", Target: "policy"},
		{Actor: audit.Actor{Kind: audit.ActorUser, ID: "u2", Name: "bob"}, Action: "policy.rule.add", Target: "p_x"},
		{Actor: audit.Actor{Kind: audit.ActorAPIKey}, Action: "plugin.install", Target: "pxy"},
		{Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1", Name: "alice"}, Action: "user.delete", Target: "u2"},
	} {
		e.Time = base.Add(time.Duration(i) * time.Minute)
		ids = append(ids, appendEntry(t, s, e).ID)
	}
	for _, c := range []struct {
		name string
		f    audit.Filter
		want []int64
	}{
		{"actor by id or name", audit.Filter{Actor: []string{"alice"}}, []int64{ids[3], ids[0]}},
		{"either of two actors", audit.Filter{Actor: []string{"u2", "alice"}}, []int64{ids[3], ids[1], ids[0]}},
		{"actor kind", audit.Filter{ActorKind: audit.ActorAPIKey}, []int64{ids[2]}},
		{"action prefix", audit.Filter{Action: "policy.*"}, []int64{ids[1], ids[0]}},
		{"exact action", audit.Filter{Action: "policy"}, nil},
		{"a wildcard in a prefix is a plain character", audit.Filter{Target: []string{"p_*"}}, []int64{ids[1]}},
		{"targets", audit.Filter{Target: []string{"u2", "policy"}}, []int64{ids[3], ids[0]}},
		{"since and until", audit.Filter{Since: base.Add(time.Minute), Until: base.Add(2 * time.Minute)}, []int64{ids[2], ids[1]}},
		{"conditions together", audit.Filter{Actor: []string{"alice"}, Action: "user.*", Since: base}, []int64{ids[3]}},
		{"before a cursor", audit.Filter{Before: ids[2]}, []int64{ids[1], ids[0]}},
	} {
		t.Run(c.name, func(t *testing.T) {
			list, _, err := s.List(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range list {
				got = append(got, e.ID)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	// Pages of two: the cursor of each leads to the next, and the last
	// has none.
	var seen []int64
	f := audit.Filter{Limit: 2}
	for range 3 {
		list, next, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			seen = append(seen, e.ID)
		}
		if next == 0 {
			break
		}
		f.Before = next
	}
	if fmt.Sprint(seen) != fmt.Sprint([]int64{ids[3], ids[2], ids[1], ids[0]}) {
		t.Errorf("paged through %v", seen)
	}
}

func testBadFilters(t *testing.T, s *audit.Store, _ func(string) error) {
	now := time.Now()
	for _, f := range []audit.Filter{{Limit: -1}, {Limit: audit.MaxLimit + 1}, {Since: now, Until: now.Add(-time.Hour)}} {
		if _, _, err := s.List(context.Background(), f); !errors.Is(err, audit.ErrInvalid) {
			t.Errorf("%+v: %v", f, err)
		}
	}
}

func appendOnly(engine database.Engine) func(t *testing.T, s *audit.Store, exec func(string) error) {
	return func(t *testing.T, s *audit.Store, exec func(string) error) { testAppendOnly(t, engine, s, exec) }
}

func testAppendOnly(t *testing.T, engine database.Engine, s *audit.Store, exec func(string) error) {
	e := appendEntry(t, s, audit.Entry{Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1"}, Action: audit.UserDelete, Target: "u2"})
	for _, q := range []string{
		`UPDATE audit SET target = 'someone else'`,
		fmt.Sprintf(`DELETE FROM audit WHERE id = %d`, e.ID),
		`DELETE FROM audit`,
		// PostgreSQL empties a table without its row triggers; SQLite
		// has no TRUNCATE, and its DELETE of every row runs them.
		`TRUNCATE audit`,
	} {
		if q == `TRUNCATE audit` && engine == database.SQLite {
			continue
		}
		err := exec(q)
		if err == nil || !strings.Contains(err.Error(), "the audit log is append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
	list, _, err := s.List(context.Background(), audit.Filter{})
	if err != nil || len(list) != 1 || list[0].Target != "u2" {
		t.Errorf("after the refused changes: %+v %v", list, err)
	}
}

func testPrune(t *testing.T, s *audit.Store, _ func(string) error) {
	ctx := context.Background()
	now := time.Now()
	old := appendEntry(t, s, audit.Entry{Time: now.Add(-40 * 24 * time.Hour), Actor: audit.Actor{Kind: audit.ActorFile}, Action: "old"})
	mid := appendEntry(t, s, audit.Entry{Time: now.Add(-3 * 24 * time.Hour), Actor: audit.Actor{Kind: audit.ActorFile}, Action: "mid"})
	if _, err := s.Prune(ctx, time.Hour); err == nil {
		t.Error("a retention shorter than a day is accepted")
	}
	n, err := s.Prune(ctx, 30*24*time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	list, _, err := s.List(ctx, audit.Filter{})
	if err != nil || len(list) != 1 || list[0].ID != mid.ID {
		t.Errorf("left %+v %v (the old one was %d)", list, err, old.ID)
	}
}
