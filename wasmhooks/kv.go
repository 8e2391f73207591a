package wasmhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/grin-ai/grin/platform/database"
)

// errKVQuota: a write would make a key-value store larger than its quota.
var errKVQuota = errors.New("the key-value store is full")

// keyValues keeps the plugins' key-value stores (the "kv" capability) in
// grin's database, SQLite or PostgreSQL: one store per plugin and user
// (user the user's id) and one per plugin (user "").
//
// Notes: safe for concurrent use.
type keyValues struct{ db *sql.DB }

// get returns the value of key, and whether there is one.
func (kv keyValues) get(ctx context.Context, plugin, user, key string) ([]byte, bool, error) {
	var v []byte
	err := kv.db.QueryRowContext(ctx, `SELECT value FROM plugin_kv WHERE plugin_id = $1 AND user_id = $2 AND key = $3`, plugin, user, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read the key: %w", err)
	}
	return v, true, nil
}

// set stores value under key unless the store's keys and values would
// then take more than quota bytes (errKVQuota). The size of the other
// keys is read and the row written under the store's lock, so two sets at
// once, on any replica, cannot both slip under the quota.
func (kv keyValues) set(ctx context.Context, plugin, user, key string, value []byte, quota int) error {
	return database.Locked(ctx, kv.db, fmt.Sprintf("grin.plugin_kv:%d:%s:%s", len(plugin), plugin, user), func(tx *sql.Tx) error {
		var others int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0) FROM plugin_kv
			WHERE plugin_id = $1 AND user_id = $2 AND key <> $3`, plugin, user, key).Scan(&others); err != nil {
			return fmt.Errorf("measure the store: %w", err)
		}
		if others+int64(len(key)+len(value)) > int64(quota) {
			return errKVQuota
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO plugin_kv (plugin_id, user_id, key, value) VALUES ($1, $2, $3, $4)
			ON CONFLICT (plugin_id, user_id, key) DO UPDATE SET value = excluded.value`, plugin, user, key, value); err != nil {
			return fmt.Errorf("write the key: %w", err)
		}
		return nil
	})
}

// delete removes key and says whether it was there.
func (kv keyValues) delete(ctx context.Context, plugin, user, key string) (bool, error) {
	res, err := kv.db.ExecContext(ctx, `DELETE FROM plugin_kv WHERE plugin_id = $1 AND user_id = $2 AND key = $3`, plugin, user, key)
	if err != nil {
		return false, fmt.Errorf("delete the key: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// eraseUser deletes every plugin's store of user, and no plugin-wide one.
func (kv keyValues) eraseUser(ctx context.Context, user string) error {
	if _, err := kv.db.ExecContext(ctx, `DELETE FROM plugin_kv WHERE user_id = $1 AND user_id <> ''`, user); err != nil {
		return fmt.Errorf("erase plugins' data of user %s: %w", user, err)
	}
	return nil
}

// erasePlugin deletes every store of plugin.
func (kv keyValues) erasePlugin(ctx context.Context, plugin string) error {
	if _, err := kv.db.ExecContext(ctx, `DELETE FROM plugin_kv WHERE plugin_id = $1`, plugin); err != nil {
		return fmt.Errorf("erase the key-value stores of plugin %s: %w", plugin, err)
	}
	return nil
}
