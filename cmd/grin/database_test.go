package main

import (
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/integration/weaviatetest"
)

// TestServeOnPostgresRefusals: GRIN_DATABASE_URL (or -database-url) with
// memories in the embedded store is refused, naming GRIN_MEMORY=weaviate;
// a PostgreSQL that does not answer is named; a URL of another engine is
// named as wrong. None repeats the password, and no SQLite file is made
// on the way.
func TestServeOnPostgresRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"embedded memory", map[string]string{"GRIN_DATABASE_URL": "postgres://grin:pw-s3cret@127.0.0.1:5432/grin"}, nil,
			[]string{"GRIN_DATABASE_URL", "embedded store", "GRIN_MEMORY=weaviate", "leave GRIN_DATABASE_URL unset"}},
		{"embedded memory, flag", nil, []string{"-database-url", "postgresql://grin:pw-s3cret@db.example.com/grin"},
			[]string{"GRIN_DATABASE_URL", "GRIN_MEMORY=weaviate"}},
		{"nobody there", map[string]string{"GRIN_DATABASE_URL": "postgres://grin:pw-s3cret@127.0.0.1:1/grin", "GRIN_MEMORY": "weaviate", "GRIN_WEAVIATE_URL": "http://127.0.0.1:1"}, nil,
			[]string{"GRIN_DATABASE_URL", "127.0.0.1:1"}},
		{"another engine", map[string]string{"GRIN_DATABASE_URL": "mysql://grin:pw-s3cret@127.0.0.1/grin"}, nil,
			[]string{"GRIN_DATABASE_URL: must be a PostgreSQL URL"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{"GRIN_DATA_DIR": dir}
			for k, v := range c.env {
				env[k] = v
			}
			code, _, stderr := runGrin(t, env, append([]string{"serve"}, c.args...)...)
			if code == 0 {
				t.Fatal("grin serve started")
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("the message does not say %q: %s", w, stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "grin.db")); !os.IsNotExist(err) {
				t.Errorf("a SQLite file was made: %v", err)
			}
			if strings.Contains(stderr, "pw-s3cret") {
				t.Errorf("the message repeats the password: %s", stderr)
			}
		})
	}
}

// TestServeOnPostgres: grin serve with GRIN_DATABASE_URL keeps its state
// in PostgreSQL and its memories in Weaviate: it answers, the turn is in
// PostgreSQL, and its data directory holds no SQLite file.
func TestServeOnPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	wv := weaviatetest.Start(t)
	url := pg.Database(t)
	dir := t.TempDir()
	s := startServe(t, map[string]string{
		"GRIN_DATA_DIR": dir, "GRIN_DATABASE_URL": url, "GRIN_MEMORY": "weaviate",
		"GRIN_WEAVIATE_URL": wv.URL, "GRIN_WEAVIATE_GRPC_PORT": strconv.Itoa(wv.GRPCPort),
	})
	r, err := http.Post(s.url+"/message", "application/json", strings.NewReader(`{"text":"my hat is green"}`))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("POST /message: %v %v", r, err)
	}
	r.Body.Close()
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var text string
	if err := db.QueryRow(`SELECT text FROM conversation_history WHERE who = 'Human'`).Scan(&text); err != nil || text != "my hat is green" {
		t.Errorf("the turn in PostgreSQL: %q %v", text, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "grin.db")); !os.IsNotExist(err) {
		t.Errorf("a SQLite file was made in the data directory: %v", err)
	}
	if code := s.stop(); code != 0 {
		t.Errorf("exit %d: %s", code, s.stderr.String())
	}
	if strings.Contains(s.stderr.String(), url[strings.Index(url, ":")+3:strings.Index(url, "@")]) {
		t.Errorf("the log shows the database password")
	}
}
