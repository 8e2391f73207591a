package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grin-ai/grin/integration/pgtest"
	"github.com/grin-ai/grin/platform/cluster"
)

// wait is how long a test waits for an event that must come; it bounds a
// broken test, never a measured speed.
const wait = 30 * time.Second

func newBus(t *testing.T, url string, cfg cluster.PostgresConfig) *cluster.Postgres {
	t.Helper()
	cfg.URL = url
	b, err := cluster.NewPostgres(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// collect subscribes to topic and returns the channel its events arrive on.
func collect(b cluster.Bus, topic string) <-chan cluster.Event {
	ch := make(chan cluster.Event, 10000)
	b.Subscribe(topic, func(_ context.Context, e cluster.Event) { ch <- e })
	return ch
}

func next(t *testing.T, ch <-chan cluster.Event) cluster.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(wait):
		t.Fatalf("no event within %s", wait)
		return cluster.Event{}
	}
}

func publish(t *testing.T, b cluster.Bus, e cluster.Event) {
	t.Helper()
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

func TestPostgres(t *testing.T) {
	server := pgtest.Start(t)

	t.Run("two replicas see each other's events, never their own", func(t *testing.T) {
		url := server.Database(t)
		a, b := newBus(t, url, cluster.PostgresConfig{}), newBus(t, url, cluster.PostgresConfig{})
		if a.ID() == b.ID() {
			t.Fatalf("two buses share the id %q", a.ID())
		}
		atA, atB := collect(a, cluster.TopicUser), collect(b, cluster.TopicUser)
		publish(t, a, cluster.Event{Topic: cluster.TopicUser, Key: "from a"})
		publish(t, b, cluster.Event{Topic: cluster.TopicUser, Key: "from b"})
		// Delivered in commit order: had a received its own event, it
		// would come before b's.
		if e := next(t, atA); e.Key != "from b" || e.Origin != b.ID() || e.Missed {
			t.Errorf("a got %+v, want b's event", e)
		}
		if e := next(t, atB); e.Key != "from a" || e.Origin != a.ID() {
			t.Errorf("b got %+v, want a's event", e)
		}
		// And a topic nobody subscribed to reaches nobody.
		publish(t, a, cluster.Event{Topic: cluster.TopicPlugin, Key: "p"})
		publish(t, a, cluster.Event{Topic: cluster.TopicUser, Key: "after"})
		if e := next(t, atB); e.Key != "after" {
			t.Errorf("b got %+v, want only its topic's events", e)
		}
	})

	t.Run("events from one replica arrive in the order published", func(t *testing.T) {
		url := server.Database(t)
		a, b := newBus(t, url, cluster.PostgresConfig{}), newBus(t, url, cluster.PostgresConfig{})
		got := collect(b, cluster.TopicFrame)
		const n = 300
		for i := range n {
			data := []byte(fmt.Sprintf(`{"n":%d}`, i))
			if i%50 == 7 {
				data = bytes.Repeat([]byte("x"), 9000+i) // split ones among them
			}
			publish(t, a, cluster.Event{Topic: cluster.TopicFrame, Key: fmt.Sprint(i), Data: data})
		}
		for i := range n {
			if e := next(t, got); e.Key != fmt.Sprint(i) {
				t.Fatalf("event %d arrived as number %s", i, e.Key)
			}
		}
	})

	t.Run("large and binary events arrive whole", func(t *testing.T) {
		url := server.Database(t)
		a, b := newBus(t, url, cluster.PostgresConfig{}), newBus(t, url, cluster.PostgresConfig{})
		got := collect(b, cluster.TopicFrame)
		text := []byte(`{"type":"chat","content":"` + strings.Repeat("é€😀 \\n ", 1400) + `"}`) // ~20 KB, multi-byte
		binary := make([]byte, 20<<10)
		for i := range binary {
			binary[i] = byte(i * 7)
		}
		cases := []cluster.Event{
			{Topic: cluster.TopicFrame, Key: "text", Data: text},
			{Topic: cluster.TopicFrame, Key: "binary", Data: binary},
			{Topic: cluster.TopicFrame, Key: "user\nwith \"odd\" id ✓", Data: []byte("small")},
			{Topic: cluster.TopicFrame, Key: "empty"},
		}
		for _, c := range cases {
			publish(t, a, c)
		}
		for _, c := range cases {
			e := next(t, got)
			if e.Key != c.Key || !bytes.Equal(e.Data, c.Data) {
				t.Errorf("%q arrived as %q with %d bytes, want %d bytes as sent", c.Key, e.Key, len(e.Data), len(c.Data))
			}
		}
		err := a.Publish(context.Background(), cluster.Event{Topic: cluster.TopicFrame, Data: make([]byte, cluster.MaxEventBytes)})
		if !errors.Is(err, cluster.ErrEventTooLarge) {
			t.Errorf("an event over the limit: %v, want ErrEventTooLarge", err)
		}
	})

	t.Run("a lost connection yields Missed, then events flow again", func(t *testing.T) {
		url := server.Database(t)
		a, b := newBus(t, url, cluster.PostgresConfig{}), newBus(t, url, cluster.PostgresConfig{})
		users, plugins := collect(b, cluster.TopicUser), collect(b, cluster.TopicPlugin)
		killListener(t, url, b)
		for _, ch := range []<-chan cluster.Event{users, plugins} {
			if e := next(t, ch); !e.Missed {
				t.Errorf("after the connection dropped: %+v, want Missed", e)
			}
		}
		publish(t, a, cluster.Event{Topic: cluster.TopicUser, Key: "back"})
		if e := next(t, users); e.Key != "back" || e.Missed {
			t.Errorf("after reconnecting: %+v, want a's event", e)
		}
	})

	t.Run("a slow subscriber gets Missed and stalls no one", func(t *testing.T) {
		url := server.Database(t)
		a, b := newBus(t, url, cluster.PostgresConfig{}), newBus(t, url, cluster.PostgresConfig{Queue: 4})
		unblock := make(chan struct{})
		release := sync.OnceFunc(func() { close(unblock) })
		// Registered after the buses, so it runs before they close: a
		// failure below must not leave Close waiting on a blocked handler.
		t.Cleanup(release)
		slow := make(chan cluster.Event, 100)
		b.Subscribe(cluster.TopicUser, func(_ context.Context, e cluster.Event) {
			<-unblock
			slow <- e
		})
		fast := collect(b, cluster.TopicUser)
		const n = 20
		// One event at a time, each received by the fast subscriber before
		// the next is sent: its queue never holds more than one however
		// loaded the machine, while the slow one's overflows.
		for i := range n {
			publish(t, a, cluster.Event{Topic: cluster.TopicUser, Key: fmt.Sprint(i)})
			if e := next(t, fast); e.Key != fmt.Sprint(i) || e.Missed {
				t.Fatalf("the fast subscriber got %+v, want %d", e, i)
			}
		}
		release()
		var missed bool
		for {
			e := next(t, slow)
			missed = missed || e.Missed
			if e.Key == fmt.Sprint(n-1) {
				break
			}
		}
		if !missed {
			t.Error("the slow subscriber's queue overflowed without a Missed")
		}
	})

	t.Run("Close leaves no goroutine behind", func(t *testing.T) {
		url := server.Database(t)
		a := newBus(t, url, cluster.PostgresConfig{})
		b, err := cluster.NewPostgres(context.Background(), cluster.PostgresConfig{URL: url})
		if err != nil {
			t.Fatal(err)
		}
		got := collect(b, cluster.TopicUser)
		collect(b, cluster.TopicPlugin)
		publish(t, a, cluster.Event{Topic: cluster.TopicUser, Key: "k"})
		next(t, got)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		a.Close()
		if left := goroutinesIn("platform/cluster."); left != "" {
			t.Errorf("goroutines of the bus still run after Close:\n%s", left)
		}
		// Subscribing and publishing after Close are harmless.
		b.Subscribe(cluster.TopicUser, func(context.Context, cluster.Event) { t.Error("called after Close") })
	})
}

// killListener ends b's listening connection from the server's side, as a
// restart of PostgreSQL or a dropped network would.
func killListener(t *testing.T, url string, b *cluster.Postgres) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
		"grin bus "+b.ID()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("terminated %d listening connections, want 1", n)
	}
}

// goroutinesIn returns the stacks of the goroutines running code whose
// name contains pkg, other than the caller's own.
func goroutinesIn(pkg string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && strings.Contains(g, pkg) { // the first is the caller's
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
