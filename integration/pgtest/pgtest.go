// Package pgtest runs real PostgreSQL servers for tests: Debian's
// PostgreSQL (initdb and postgres from /usr/lib/postgresql/<version>/bin),
// never a stand-in, each with its own data directory, on a free loopback
// port, stopped and removed when the test ends.
//
// PostgreSQL refuses to run as root, and tests often do (CI): the server
// then runs as the unprivileged user nobody (uid and gid from the system's
// passwd, 65534 on Debian), its directory owned by that user. Run as any
// other user, it runs as that user. Without PostgreSQL installed the tests
// skip and say how to install it; with GRIN_REQUIRE_POSTGRES=1 (.ci/run
// sets it) they fail instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Install is the command that installs what the tests need.
const Install = "apt-get install -y postgresql"

// Server is a running PostgreSQL.
type Server struct {
	// URL reaches the database "grin" as its owner, by password, over
	// loopback TCP: postgres://grin:<password>@127.0.0.1:<port>/grin.
	URL  string
	Port int
	// Dir holds the data directory (data/) and the server's log
	// (postgres.log); it is removed when the test ends.
	Dir string

	admin *url.URL // the same user on the maintenance database "postgres"
	cmd   *exec.Cmd
	done  chan struct{}
	mu    sync.Mutex
	dbs   int
}

// BinDir finds PostgreSQL's programs: GRIN_POSTGRES_BIN, or the newest
// /usr/lib/postgresql/<version>/bin holding initdb and postgres. It
// returns "" when there is none.
func BinDir() string {
	if d := os.Getenv("GRIN_POSTGRES_BIN"); d != "" {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d
		}
		return ""
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d
		}
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Start runs a PostgreSQL server for the test, with a database "grin"
// owned by the user "grin", and stops it (and removes its directory) when
// the test ends. It skips the test when PostgreSQL is not installed,
// unless GRIN_REQUIRE_POSTGRES=1.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := BinDir()
	if bin == "" {
		msg := "PostgreSQL is not installed (no initdb and postgres in GRIN_POSTGRES_BIN or /usr/lib/postgresql/*/bin): " + Install
		if os.Getenv("GRIN_REQUIRE_POSTGRES") == "1" {
			t.Fatal(msg + " (GRIN_REQUIRE_POSTGRES=1)")
		}
		t.Skip(msg)
	}
	s, err := start(bin)
	if err != nil {
		t.Fatalf("start PostgreSQL from %s: %v", bin, err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// start runs a server, which the caller stops; on an error nothing of it
// is left running or on disk.
func start(bin string) (_ *Server, err error) {
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	// Not t.TempDir: its parents are private to the test's user, and the
	// server may run as another.
	dir, err := os.MkdirTemp("", "grin-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: dir, done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("give %s to the server's user: %w", dir, err)
		}
	}
	password := randomHex(16)
	pwfile := filepath.Join(dir, "pwfile")
	if err := writeOwned(pwfile, password+"\n", cred); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "grin", "--pwfile", pwfile,
		"--auth=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
	initdb.Env = serverEnv(dir)
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	os.Remove(pwfile)

	// A free port can be taken between finding it and the server binding
	// it: try a few.
	var lastErr error
	for range 5 {
		s.Port, err = freePort()
		if err != nil {
			return nil, err
		}
		if lastErr = s.run(bin, data, cred); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	s.admin = &url.URL{Scheme: "postgres", User: url.UserPassword("grin", password),
		Host: "127.0.0.1:" + strconv.Itoa(s.Port), Path: "/postgres", RawQuery: "sslmode=disable"}
	if err := s.waitReady(); err != nil {
		return nil, err
	}
	if err := s.exec(context.Background(), "CREATE DATABASE grin"); err != nil {
		return nil, err
	}
	u := *s.admin
	u.Path = "/grin"
	s.URL = u.String()
	return s, nil
}

// run starts postgres on s.Port and returns once it runs (not yet ready);
// it returns an error when the server exits during its first moments.
func (s *Server) run(bin, data string, cred *syscall.Credential) error {
	logPath := filepath.Join(s.Dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	if cred != nil {
		os.Chown(logPath, int(cred.Uid), int(cred.Gid))
	}
	// Loopback TCP only; the Unix socket in the server's own directory,
	// not /var/run/postgresql; no durability work a test does not need.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-p", strconv.Itoa(s.Port),
		"-c", "unix_socket_directories="+s.Dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200")
	cmd.Env = serverEnv(s.Dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test process that dies leaves no server behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
		return fmt.Errorf("postgres exited at start on port %d:\n%s", s.Port, s.Log())
	case <-time.After(200 * time.Millisecond):
	}
	s.cmd, s.done = cmd, done
	return nil
}

// waitReady connects until the server answers, up to a minute.
func (s *Server) waitReady() error {
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, s.admin.String())
		if err == nil {
			conn.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited before it was ready:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres not ready after a minute: %w\n%s", err, s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Database creates an empty database owned by grin for the test, dropped
// when it ends, and returns its URL: tests sharing a server keep apart.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	s.mu.Lock()
	s.dbs++
	name := fmt.Sprintf("t%d_%s", s.dbs, randomHex(4))
	s.mu.Unlock()
	if err := s.exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		select {
		case <-s.done:
			return // the server is gone, and its files with it
		default:
		}
		if err := s.exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v\nthe server's log:\n%s", name, err, s.Log())
		}
	})
	u := *s.admin
	u.Path = "/" + name
	return u.String()
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Log returns what the server logged.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

// exec runs sql on the maintenance database. Connecting is tried three
// times: a connection to a healthy server has been seen reset during its
// handshake (after a test, nothing in the server's log), and a test's
// set-up or clean-up should not fail for that.
func (s *Server) exec(ctx context.Context, sql string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var conn *pgx.Conn
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
		}
		if conn, err = pgx.Connect(ctx, s.admin.String()); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// stop ends the server (a fast shutdown: clients are disconnected) and
// removes its directory.
func (s *Server) stop() error {
	var errs []error
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
			errs = append(errs, fmt.Errorf("postgres did not stop within 30 s; killed:\n%s", s.Log()))
		}
	}
	if err := os.RemoveAll(s.Dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", s.Dir, err))
	}
	return errors.Join(errs...)
}

// shared is the server of Shared: one per test process, stopped by Main.
var shared struct {
	sync.Mutex
	main bool
	srv  *Server
	err  error
}

// Main runs a package's tests (call it from TestMain, or through a
// harness's own Main) and stops the server Shared started, if any.
func Main(m interface{ Run() int }) int {
	shared.Lock()
	shared.main = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		if err := shared.srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
		}
	}
	return code
}

// Shared returns a server shared by all the tests of the process, started
// on first use; tests keep apart with a database each (Database). Without
// Main in the package's TestMain it is Start.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	inMain := shared.main
	shared.Unlock()
	if !inMain {
		return Start(t)
	}
	bin := BinDir()
	if bin == "" {
		Start(t) // skips or fails, saying how to install it
	}
	shared.Lock()
	defer shared.Unlock()
	if shared.srv == nil && shared.err == nil {
		srv, err := start(bin)
		if err != nil {
			shared.err = fmt.Errorf("start PostgreSQL from %s: %w", bin, err)
		} else {
			shared.srv = srv
		}
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// runAs is the user the server runs as: nobody when the tests run as root
// (PostgreSQL refuses root), else the tests' own user (nil).
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL does not run as root, and the user nobody to run it as is missing: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("user nobody: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// serverEnv is the environment of initdb and postgres: the locale and
// nothing of the test's (no PG* variables pointing elsewhere).
func serverEnv(home string) []string {
	return []string{"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}
}

func writeOwned(path, content string, cred *syscall.Credential) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if cred != nil {
		return os.Chown(path, int(cred.Uid), int(cred.Gid))
	}
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
