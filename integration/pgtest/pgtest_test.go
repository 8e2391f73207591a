package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestServer: a started server takes pgx connections to its database as
// grin, over loopback, and answers queries; it runs as an unprivileged
// user even when the tests run as root; a wrong password is refused; once
// its test ends it is stopped, its port closed and its directory gone.
func TestServer(t *testing.T) {
	var dir string
	var port int
	t.Run("running", func(t *testing.T) {
		s := Start(t)
		dir, port = s.Dir, s.Port
		conn := connect(t, s.URL)
		ctx := context.Background()
		var who, db, addr, version string
		if err := conn.QueryRow(ctx, "SELECT current_user, current_database(), host(inet_server_addr()), version()").Scan(&who, &db, &addr, &version); err != nil {
			t.Fatal(err)
		}
		if who != "grin" || db != "grin" || addr != "127.0.0.1" || !strings.HasPrefix(version, "PostgreSQL ") {
			t.Errorf("user %q, database %q, server address %q, version %q", who, db, addr, version)
		}
		if _, err := conn.Exec(ctx, "CREATE TABLE notes (id bigserial PRIMARY KEY, body text NOT NULL)"); err != nil {
			t.Fatal(err)
		}
		var id int64
		if err := conn.QueryRow(ctx, "INSERT INTO notes (body) VALUES ($1) RETURNING id", "Dinah").Scan(&id); err != nil || id != 1 {
			t.Fatalf("insert: %d %v", id, err)
		}
		status, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID()) + "/status")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == "0" {
				t.Errorf("postgres runs as root: %s", line)
			}
		}
		wrong := strings.Replace(s.URL, "grin:", "grin:x", 1)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if c, err := pgx.Connect(cctx, wrong); err == nil {
			c.Close(ctx)
			t.Error("a wrong password connects")
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the server's directory %s is still there: %v", dir, err)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("port %d still answers after the test", port)
	}
}

// TestDatabasesKeepApart: two tests' databases on one server see nothing
// of each other's tables.
func TestDatabasesKeepApart(t *testing.T) {
	s := Start(t)
	a, b := connect(t, s.Database(t)), connect(t, s.Database(t))
	ctx := context.Background()
	if _, err := a.Exec(ctx, "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('a')"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'secrets'").Scan(&n); err != nil || n != 0 {
		t.Errorf("the other database sees the table: %d %v", n, err)
	}
}
