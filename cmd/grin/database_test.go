package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeRefusesPostgresUntilComplete: GRIN_DATABASE_URL (or
// -database-url) is refused, in a sentence naming what is still kept only
// in the data directory, instead of starting with half of grin's state in
// each place; a URL of another engine is named as wrong. Neither repeats
// the password, and no SQLite file is made on the way.
func TestServeRefusesPostgresUntilComplete(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"environment", map[string]string{"GRIN_DATABASE_URL": "postgres://grin:pw-s3cret@127.0.0.1:5432/grin"}, nil,
			[]string{"GRIN_DATABASE_URL", "still kept only in GRIN_DATA_DIR", "the policy in force", "Leave GRIN_DATABASE_URL unset"}},
		{"flag", nil, []string{"-database-url", "postgresql://grin:pw-s3cret@db.example.com/grin"},
			[]string{"GRIN_DATABASE_URL", "still kept only in GRIN_DATA_DIR"}},
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
