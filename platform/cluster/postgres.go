package cluster

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Defaults of PostgresConfig.
const (
	// DefaultChannel is the NOTIFY channel replicas of one database share.
	DefaultChannel = "grin_bus"
	// DefaultQueue is how many events wait for one slow subscriber before
	// they are replaced by one Missed.
	DefaultQueue = 1024
	// MaxEventBytes bounds one event once encoded: NOTIFY's queue is
	// shared by the whole database server.
	MaxEventBytes = 1 << 20
)

// notifyBytes is what one notification carries at most: PostgreSQL
// refuses a payload of 8000 bytes or more. Larger events are split into
// pieces sent in one transaction, which PostgreSQL delivers together and
// in order (RATIONALE.md, "The bus").
const notifyBytes = 7999

// Reconnection backoff of the listener.
const (
	firstBackoff = 50 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// ErrEventTooLarge is returned by Publish for an event whose encoding is
// over MaxEventBytes.
var ErrEventTooLarge = errors.New("the event is too large for the bus")

// PostgresConfig says where a Postgres bus listens and publishes.
type PostgresConfig struct {
	// URL is the database's (postgres://…): the bus keeps one connection
	// of its own to it for LISTEN.
	URL string
	// DB publishes (pg_notify). When nil the bus opens a small handle of
	// its own from URL and closes it with the bus.
	DB *sql.DB
	// Channel is the NOTIFY channel (DefaultChannel when empty).
	Channel string
	// Queue is how many events wait for one subscriber (DefaultQueue when
	// zero or negative).
	Queue  int
	Logger *slog.Logger
}

// Postgres is a Bus on PostgreSQL's LISTEN/NOTIFY: one dedicated
// connection listens, publications go through the database handle, so a
// change made in a transaction can be announced in it (PublishTx) and is
// delivered only if it commits.
//
// Notes: safe for concurrent use. Each subscription has its own queue and
// goroutine: a slow handler delays only its own events, and when its queue
// is full the events waiting are replaced by one Missed. When the
// listening connection drops, the bus reconnects with backoff and then
// gives every subscription a Missed. Close stops the listener and every
// subscription's goroutine before it returns.
type Postgres struct {
	id      string
	channel string
	queue   int
	db      *sql.DB
	ownDB   bool
	cfg     *pgx.ConnConfig
	logger  *slog.Logger

	seq    sync.Mutex // orders the numbering of split events
	next   uint64
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	subs   map[string]map[*subscription]struct{}
	closed bool
	wg     sync.WaitGroup
}

// NewPostgres connects the listener and returns the bus once it listens:
// an event published by another replica after NewPostgres returns is
// delivered.
func NewPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	connCfg, err := pgx.ParseConfig(cfg.URL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("start the bus: the URL does not parse as a PostgreSQL connection string")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Postgres{
		id: newID(), channel: cfg.Channel, queue: cfg.Queue, db: cfg.DB, cfg: connCfg,
		subs: map[string]map[*subscription]struct{}{}, done: make(chan struct{}),
	}
	if b.channel == "" {
		b.channel = DefaultChannel
	}
	if b.queue <= 0 {
		b.queue = DefaultQueue
	}
	host, _ := os.Hostname()
	b.logger = logger.With("replica", b.id)
	// Operators find the listener in pg_stat_activity by this name.
	connCfg.RuntimeParams["application_name"] = "grin bus " + b.id
	if b.db == nil {
		b.db = stdlib.OpenDB(*connCfg.Copy())
		b.db.SetMaxOpenConns(2)
		b.ownDB = true
	}
	conn, err := b.listen(ctx)
	if err != nil {
		if b.ownDB {
			b.db.Close()
		}
		return nil, fmt.Errorf("start the bus: %w", err)
	}
	b.logger.Info("bus listening", "host", host, "channel", b.channel)
	lctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	go b.run(lctx, conn)
	return b, nil
}

// newID is a replica's id: random, so that two processes on one host
// differ, and short, since every notification carries it.
func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ID is this replica's random id.
func (b *Postgres) ID() string { return b.id }

// Publish sends e to the other replicas and returns once PostgreSQL has
// queued it.
func (b *Postgres) Publish(ctx context.Context, e Event) error {
	pieces, err := b.encode(e)
	if err != nil {
		return err
	}
	if len(pieces) == 1 {
		if _, err := b.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, b.channel, pieces[0]); err != nil {
			return fmt.Errorf("publish %s: %w", e.Topic, err)
		}
		return nil
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("publish %s: %w", e.Topic, err)
	}
	defer tx.Rollback()
	if err := b.notify(ctx, tx, e.Topic, pieces); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("publish %s: %w", e.Topic, err)
	}
	return nil
}

// PublishTx sends e within tx: the other replicas get it when tx commits,
// and never if it rolls back.
func (b *Postgres) PublishTx(ctx context.Context, tx *sql.Tx, e Event) error {
	pieces, err := b.encode(e)
	if err != nil {
		return err
	}
	return b.notify(ctx, tx, e.Topic, pieces)
}

func (b *Postgres) notify(ctx context.Context, tx *sql.Tx, topic string, pieces []string) error {
	for _, p := range pieces {
		if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, b.channel, p); err != nil {
			return fmt.Errorf("publish %s: %w", topic, err)
		}
	}
	return nil
}

// Subscribe calls fn, on a goroutine of the subscription, for every event
// of topic that another replica publishes, in the order received.
func (b *Postgres) Subscribe(topic string, fn func(ctx context.Context, e Event)) (cancel func()) {
	ctx, stop := context.WithCancel(context.Background())
	s := &subscription{topic: topic, fn: fn, limit: b.queue, wake: make(chan struct{}, 1), stop: stop}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		stop()
		return func() {}
	}
	set := b.subs[topic]
	if set == nil {
		set = map[*subscription]struct{}{}
		b.subs[topic] = set
	}
	set[s] = struct{}{}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		s.run(ctx)
	}()
	return func() {
		b.mu.Lock()
		delete(b.subs[topic], s)
		if len(b.subs[topic]) == 0 {
			delete(b.subs, topic)
		}
		b.mu.Unlock()
		stop()
	}
}

// Close stops listening and ends every subscription, waiting for handlers
// running now; it closes the database handle only if the bus opened it.
func (b *Postgres) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for _, set := range b.subs {
		for s := range set {
			s.stop()
		}
	}
	b.subs = nil
	b.mu.Unlock()
	b.cancel()
	<-b.done
	b.wg.Wait()
	if b.ownDB {
		return b.db.Close()
	}
	return nil
}

// listen opens the listening connection.
func (b *Postgres) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, b.cfg)
	if err != nil {
		return nil, fmt.Errorf("connect the listener: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{b.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listen on %s: %w", b.channel, err)
	}
	return conn, nil
}

// run receives notifications until ctx ends, reconnecting when the
// connection is lost.
func (b *Postgres) run(ctx context.Context, conn *pgx.Conn) {
	defer close(b.done)
	asm := assembler{}
	for {
		err := b.receive(ctx, conn, &asm)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return
		}
		b.logger.Warn("the bus lost its connection; reconnecting", "err", err)
		asm = assembler{} // a split event cut by the drop is lost
		if conn = b.reconnect(ctx); conn == nil {
			return
		}
		b.logger.Info("the bus is listening again; subscribers reload what they keep")
		b.missed()
	}
}

// receive delivers notifications from conn until it fails or ctx ends.
func (b *Postgres) receive(ctx context.Context, conn *pgx.Conn, asm *assembler) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		e, ok, err := asm.add(n.Payload)
		if err != nil {
			b.logger.Warn("a bus notification was dropped", "err", err)
			continue
		}
		if ok && e.Origin != b.id {
			b.deliver(e)
		}
	}
}

// reconnect tries until it listens again or ctx ends (nil then).
func (b *Postgres) reconnect(ctx context.Context) *pgx.Conn {
	wait := firstBackoff
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := b.listen(cctx)
		cancel()
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		b.logger.Warn("the bus cannot reconnect yet", "err", err, "retry_in", wait)
		wait = min(2*wait, maxBackoff)
	}
}

func (b *Postgres) deliver(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs[e.Topic] {
		s.push(e)
	}
}

// missed tells every subscription that events may have been lost.
func (b *Postgres) missed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for topic, set := range b.subs {
		for s := range set {
			s.push(Event{Topic: topic, Missed: true})
		}
	}
}

// subscription is one handler with its queue.
type subscription struct {
	topic string
	fn    func(context.Context, Event)
	limit int
	wake  chan struct{}
	stop  context.CancelFunc

	mu      sync.Mutex
	pending []Event
}

// push queues e without blocking; a full queue is replaced by one Missed,
// which says everything that the dropped events said and more.
func (s *subscription) push(e Event) {
	s.mu.Lock()
	if len(s.pending) >= s.limit {
		s.pending = append(s.pending[:0], Event{Topic: s.topic, Missed: true})
	}
	s.pending = append(s.pending, e)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, e := range batch {
			if ctx.Err() != nil {
				return
			}
			s.fn(ctx, e)
		}
	}
}

// The encoding. An event is a header line of JSON and its data:
//
//	{"t":"frame","k":"alice"}\n{"type":"chat_token",…}
//
// Data that is not UTF-8 text without NUL (which a notification may not
// hold) is base64 and the header says "b":1. The encoded event is cut into
// pieces of at most notifyBytes, each led by "origin seq index/count\n".
type header struct {
	Topic string `json:"t"`
	Key   string `json:"k,omitempty"`
	B64   int    `json:"b,omitempty"`
}

func (b *Postgres) encode(e Event) ([]string, error) {
	h := header{Topic: e.Topic, Key: e.Key}
	data := string(e.Data)
	if !utf8.ValidString(data) || strings.IndexByte(data, 0) >= 0 {
		h.B64, data = 1, base64.StdEncoding.EncodeToString(e.Data)
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	body := string(hb) + "\n" + data
	if len(body) > MaxEventBytes {
		return nil, fmt.Errorf("%w: %s %q is %d bytes encoded, at most %d", ErrEventTooLarge, e.Topic, e.Key, len(body), MaxEventBytes)
	}
	b.seq.Lock()
	b.next++
	seq := b.next
	b.seq.Unlock()
	// The prefix is at most 12+1+20+1+3+1+3+1 bytes (MaxEventBytes fits
	// in 133 pieces).
	room := notifyBytes - 48
	var parts []string
	for len(body) > room {
		cut := room
		for cut > 0 && !utf8.RuneStart(body[cut]) {
			cut--
		}
		parts = append(parts, body[:cut])
		body = body[cut:]
	}
	parts = append(parts, body)
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf("%s %d %d/%d\n%s", b.id, seq, i, len(parts), p)
	}
	return out, nil
}

// assembler joins the pieces of split events, per origin. PostgreSQL
// delivers the notifications of one transaction together, so each origin
// has at most one event in pieces at a time.
type assembler map[string]*partial

type partial struct {
	seq   string
	count int
	parts []string
}

// add takes one notification and returns the event it completes.
func (a assembler) add(payload string) (e Event, ok bool, err error) {
	prefix, body, found := strings.Cut(payload, "\n")
	f := strings.Fields(prefix)
	if !found || len(f) != 3 {
		return Event{}, false, fmt.Errorf("not a grin event: %.40q", payload)
	}
	origin, seq := f[0], f[1]
	is, cs, _ := strings.Cut(f[2], "/")
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(cs)
	if err1 != nil || err2 != nil || i < 0 || n < 1 || i >= n {
		return Event{}, false, fmt.Errorf("not a grin event: %.40q", payload)
	}
	if n > 1 {
		p := a[origin]
		if i == 0 {
			p = &partial{seq: seq, count: n}
			a[origin] = p
		} else if p == nil || p.seq != seq || len(p.parts) != i {
			delete(a, origin)
			return Event{}, false, fmt.Errorf("piece %d/%d of event %s from %s came without the pieces before it", i, n, seq, origin)
		}
		p.parts = append(p.parts, body)
		if len(p.parts) < n {
			return Event{}, false, nil
		}
		delete(a, origin)
		body = strings.Join(p.parts, "")
	}
	hb, data, found := strings.Cut(body, "\n")
	var h header
	if !found || json.Unmarshal([]byte(hb), &h) != nil || h.Topic == "" {
		return Event{}, false, fmt.Errorf("event %s from %s has no header", seq, origin)
	}
	e = Event{Topic: h.Topic, Key: h.Key, Origin: origin}
	if h.B64 == 1 {
		if e.Data, err = base64.StdEncoding.DecodeString(data); err != nil {
			return Event{}, false, fmt.Errorf("event %s from %s: %w", seq, origin, err)
		}
	} else if data != "" {
		e.Data = []byte(data)
	}
	return e, true, nil
}

var _ Bus = (*Postgres)(nil)
