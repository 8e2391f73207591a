package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/grin-ai/grin/platform/app/apptest"
)

// TestChatRowsFitTheirPages: a chat turn's rows (the AI turn with its why,
// the episodic point with its vector) are written whole into the SQLite
// file's pages, not each with an overflow page of its own; and a data
// directory written with the earlier layout (WITHOUT ROWID tables) is
// moved to this one at start, keeping every turn, in order, and every
// memory.
func TestChatRowsFitTheirPages(t *testing.T) {
	apptest.SQLiteOnly(t, "the layout of the history and memory tables in the SQLite file")
	dir := t.TempDir()
	users := []string{"alice", "bob"}
	say := func(user string, n int) string {
		return fmt.Sprintf("%s's cat number %d is called Dinah the %dth", user, n, n)
	}
	first := apptest.StartWith(t, apptest.Config(dir))
	for n := range 4 {
		for _, u := range users {
			if r := first.Do("POST", "/message", map[string]any{"text": say(u, n)}, "user_id", u); r.Status != 200 {
				t.Fatalf("message: %d %s", r.Status, r.Body)
			}
		}
	}
	overflow := func(when string) {
		t.Helper()
		db := apptest.OpenDatabase(t, dir)
		rows, err := db.Query(`SELECT name, count(*) FROM dbstat WHERE name IN ('conversation_history', 'memory_points') AND pagetype = 'overflow' GROUP BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var n int
			rows.Scan(&name, &n)
			t.Errorf("%s: %s has %d overflow pages for %d turns", when, name, n, 4*len(users))
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	overflow("a new data directory")
	first.Close()

	// The same data in the earlier layout, at the schema version before.
	db := apptest.OpenDatabase(t, dir)
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE history_before (user_id TEXT NOT NULL, seq INTEGER NOT NULL, who TEXT NOT NULL, text TEXT NOT NULL, why TEXT, at REAL NOT NULL,
			PRIMARY KEY (user_id, seq)) WITHOUT ROWID`,
		`INSERT INTO history_before SELECT user_id, seq, who, text, why, at FROM conversation_history`,
		`DROP TABLE conversation_history`,
		`ALTER TABLE history_before RENAME TO conversation_history`,
		`CREATE TABLE points_before (collection TEXT NOT NULL, partition TEXT NOT NULL, id TEXT NOT NULL, content TEXT NOT NULL,
			metadata TEXT NOT NULL, embedder TEXT NOT NULL, vector BLOB NOT NULL, seq INTEGER NOT NULL,
			PRIMARY KEY (collection, partition, id)) WITHOUT ROWID`,
		`INSERT INTO points_before SELECT collection, partition, id, content, metadata, embedder, vector, seq FROM memory_points`,
		`DROP TABLE memory_points`,
		`ALTER TABLE points_before RENAME TO memory_points`,
		`CREATE INDEX memory_points_order ON memory_points (collection, partition, seq)`,
		// The layout changes in the last migration.
		fmt.Sprintf(`PRAGMA user_version = %d`, version-1),
	} {
		if _, err := tx.Exec(q); err != nil {
			tx.Rollback()
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	db.Close()

	second := apptest.StartWith(t, apptest.Config(dir))
	for _, u := range users {
		var want []string
		for n := range 4 {
			want = append(want, "Human: "+say(u, n), "AI: ")
		}
		got := historyTexts(t, second, u)
		if len(got) != len(want) {
			t.Fatalf("%s's history after the move: %q", u, got)
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%s's turn %d after the move: %q, want %q…", u, i, got[i], want[i])
			}
		}
		var f frame
		second.Do("POST", "/message", map[string]any{"text": "What is my cat number 2 called?"}, "user_id", u).JSON(t, &f)
		if len(f.Why.Memory.Episodic) == 0 || !strings.Contains(f.Text, say(u, 2)) {
			t.Errorf("%s does not recall her own words after the move: %+v", u, f.Why.Memory.Episodic)
		}
		for _, d := range f.Why.Memory.Episodic {
			if d.Metadata["source"] != u {
				t.Errorf("%s recalled another user's memory after the move: %+v", u, d)
			}
		}
	}
	if got := episodicCount(t, second, "alice"); got != 5 {
		t.Errorf("alice has %d episodic memories after the move and one more turn, want 5", got)
	}
	var layouts string
	apptest.OpenDatabase(t, dir).QueryRow(`SELECT group_concat(sql, ';') FROM sqlite_schema WHERE name IN ('conversation_history', 'memory_points')`).Scan(&layouts)
	if strings.Contains(layouts, "WITHOUT ROWID") {
		t.Errorf("the tables were not moved: %s", layouts)
	}
	overflow("after the move and more turns")
}
