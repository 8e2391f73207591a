package auth

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/grin-ai/grin/platform/database"
)

// TestSecretOnEachEngine: replicas starting together on one database, each
// with its own data directory, agree on one JWT secret; a secret an older
// grin kept in the data directory is the one moved in, and its file goes.
func TestSecretOnEachEngine(t *testing.T) {
	for _, engine := range []database.Engine{database.SQLite, database.Postgres} {
		t.Run(string(engine), func(t *testing.T) {
			t.Run("replicas starting together agree", func(t *testing.T) {
				a, b := twoHandles(t, engine)
				const replicas = 8
				got := make([][]byte, replicas)
				var wg sync.WaitGroup
				for i := range replicas {
					db := []*sql.DB{a, b}[i%2]
					wg.Go(func() {
						s, err := LoadOrCreateSecret(context.Background(), db, t.TempDir())
						if err != nil {
							t.Error(err)
						}
						got[i] = s
					})
				}
				wg.Wait()
				for i, s := range got {
					if len(s) < MinSecretBytes || !bytes.Equal(s, got[0]) {
						t.Errorf("replica %d's secret differs from the first's (%d bytes)", i, len(s))
					}
				}
			})
			t.Run("an older grin's file is moved in", func(t *testing.T) {
				db, _ := twoHandles(t, engine)
				dir := t.TempDir()
				old := bytes.Repeat([]byte{7}, 40)
				path := filepath.Join(dir, "jwt-secret")
				if err := os.WriteFile(path, []byte(base64.RawStdEncoding.EncodeToString(old)+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				s, err := LoadOrCreateSecret(context.Background(), db, dir)
				if err != nil || !bytes.Equal(s, old) {
					t.Fatalf("moved: %v, same as the file's: %t", err, bytes.Equal(s, old))
				}
				if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the file after the move: %v", err)
				}
				if s, err := LoadOrCreateSecret(context.Background(), db, t.TempDir()); err != nil || !bytes.Equal(s, old) {
					t.Errorf("read again without the file: %v, same: %t", err, bytes.Equal(s, old))
				}
			})
			t.Run("a damaged file stops the start and says what to do", func(t *testing.T) {
				db, _ := twoHandles(t, engine)
				dir := t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "jwt-secret"), []byte("short\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				_, err := LoadOrCreateSecret(context.Background(), db, dir)
				if err == nil || !strings.Contains(err.Error(), "damaged; delete it") {
					t.Errorf("a damaged file: %v", err)
				}
			})
		})
	}
}
