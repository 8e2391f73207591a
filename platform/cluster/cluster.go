// Package cluster carries what one grin replica must tell the others that
// share its database: a user's frames for their sockets elsewhere, and
// every change that makes another replica's in-memory copy stale (the
// policy, a user's permissions or tokens, a deletion, plugins, settings).
//
// One process on SQLite is a cluster of one: [Local] publishes to nobody.
// Replicas on PostgreSQL use a Bus built on LISTEN/NOTIFY, so grin needs no
// broker of its own (RATIONALE.md).
package cluster

import "context"

// Topics name what changed; each has one publisher and may have several
// subscribers. Keys are the id of what changed (a user id, a plugin id);
// "" means all of it.
const (
	// TopicFrame carries a chat frame for a user's sockets (Key: user id,
	// Data: the encoded frame).
	TopicFrame = "frame"
	// TopicPolicy: a new policy version is in force (Key: its number).
	TopicPolicy = "policy"
	// TopicGrants: a user's or plugin's grants changed (Key: the subject).
	TopicGrants = "grants"
	// TopicUserDeleted: a user is gone (Key: user id); their sockets close.
	TopicUserDeleted = "user.deleted"
	// TopicTokensRevoked: a user's tokens were revoked (Key: user id, Data:
	// the new epoch in decimal); sockets opened with older tokens close.
	TopicTokensRevoked = "user.revoked"
	// TopicUser: a user's record changed (name, permissions) (Key: user id).
	TopicUser = "user"
	// TopicPlugin: a plugin was installed, toggled, configured or deleted
	// (Key: plugin id).
	TopicPlugin = "plugin"
	// TopicSettings: a settings registry changed (Key: its kind, such as
	// "llm", "embedder", "auth_handler").
	TopicSettings = "settings"
	// TopicHistory: a user's conversation was written or cleared by
	// another replica (Key: user id); a cached session window is stale.
	TopicHistory = "history"
	// TopicPresence: which users have sockets on which replica, so that a
	// frame is published only when another replica has a socket for it
	// (Key: user id, Data: "+" first socket opened, "-" last one closed;
	// Key "", Data "?": tell me all yours; Key "", Data "=" and a JSON
	// array: every user with sockets on the publisher, replacing what was
	// known of it).
	TopicPresence = "presence"
	// TopicTurn: a user's turn lease was released (Key: user id); a
	// replica waiting to answer that user tries again now.
	TopicTurn = "turn"
	// TopicMemoryUsed: the users' Weaviate tenants a replica served since
	// it last said (Data: tenant names, one a line), so that no replica
	// sets cold a tenant another one is serving.
	TopicMemoryUsed = "memory.used"
)

// Event is one change published by a replica.
type Event struct {
	Topic string
	Key   string
	Data  []byte
	// Origin is the id of the replica that published it.
	Origin string
	// Missed says the bus may have lost events of this topic (its
	// connection dropped and came back): a subscriber drops or reloads
	// everything it keeps of the topic, not just Key.
	Missed bool
}

// Bus delivers events between replicas.
//
// Notes: delivery is at most once while connected; after a gap every
// subscriber gets an event with Missed set, so a copy is never stale for
// longer than the reconnection. Each subscription's handler runs one
// event at a time, in publication order from one origin; it must not
// block for long (Postgres replaces a backlog with one Missed).
type Bus interface {
	// ID names this replica in events it publishes.
	ID() string
	// Publish tells the other replicas. It returns once the event is
	// handed to the database: a change made in a transaction is
	// published after its commit.
	Publish(ctx context.Context, e Event) error
	// Subscribe calls fn for every event of topic published by another
	// replica (never for this replica's own), until cancel is called.
	Subscribe(topic string, fn func(ctx context.Context, e Event)) (cancel func())
}

// Local is the bus of a single process: there is nobody to tell.
type Local struct{}

// ID is "local".
func (Local) ID() string { return "local" }

// Publish does nothing: no other replica shares the database.
func (Local) Publish(context.Context, Event) error { return nil }

// Subscribe never calls fn.
func (Local) Subscribe(string, func(context.Context, Event)) func() { return func() {} }

var _ Bus = Local{}
