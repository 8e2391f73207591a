package main

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/integration/weaviatetest"
)

// readBenchReport decodes grin bench chat -json's output (whose field
// names TestBenchChatRuns checks).
func readBenchReport(t *testing.T, out string) benchReport {
	t.Helper()
	var rep benchReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-json output: %v: %s", err, out)
	}
	return rep
}

// TestBenchChatOnReplicas: grin bench chat -replicas 3 spreads the users
// over three in-process replicas sharing one PostgreSQL database and one
// Weaviate, and every turn lands in that database.
func TestBenchChatOnReplicas(t *testing.T) {
	pg := pgtest.Start(t)
	wv := weaviatetest.Start(t)
	db := pg.Database(t)
	env := map[string]string{"GRIN_WEAVIATE_GRPC_PORT": strconv.Itoa(wv.GRPCPort)}
	logFile := filepath.Join(t.TempDir(), "grin.log")
	code, out, errOut := runGrin(t, env, "bench", "chat", "-users", "6", "-messages", "2", "-json", "-echo=false", "-log", logFile,
		"-memory", "weaviate", "-weaviate-url", wv.URL, "-replicas", "3", "-database-url", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	rep := readBenchReport(t, out)
	if rep.Grin.Replies != 12 || rep.Grin.Errors != 0 || rep.Replicas != 3 {
		t.Errorf("bench on three replicas: %+v\n%s", rep, errOut)
	}
	// -log keeps the servers' warnings and errors, one JSON object a line;
	// a clean run on new data directories has none.
	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatalf("-log wrote no file: %v", err)
	}
	for line := range strings.Lines(string(logged)) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Errorf("a log line that is not JSON: %q", line)
		} else {
			t.Errorf("a clean run logged %v: %v", entry["level"], entry["msg"])
		}
	}
	conn, err := sql.Open("pgx", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var users, turns int
	if err := conn.QueryRow(`SELECT count(DISTINCT user_id), count(*) FROM conversation_history`).Scan(&users, &turns); err != nil {
		t.Fatal(err)
	}
	if users != 6 || turns != 24 {
		t.Errorf("the shared database holds %d users' %d turns, want 6 users' 24", users, turns)
	}
	for _, bad := range [][]string{
		{"-replicas", "3"},
		{"-replicas", "3", "-memory", "weaviate", "-weaviate-url", wv.URL},
		{"-replicas", "-1"},
	} {
		if code, _, errOut := runGrin(t, map[string]string{}, append([]string{"bench", "chat", "-users", "1", "-messages", "1"}, bad...)...); code == 0 || errOut == "" {
			t.Errorf("bench chat %v: exit %d, want a refusal in words", bad, code)
		}
	}
}
