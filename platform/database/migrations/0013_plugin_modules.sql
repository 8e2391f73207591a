-- Installed plugins' modules and manifests, in the database rather than in
-- the data directory (plugins/<id>/), so that replicas sharing a database
-- run the same plugins; each replica compiles a module once and keeps the
-- compiled code in its own cache (wasm-cache/), keyed by the module's
-- hash. A plugins row with no row here is from an older grin: its files
-- are moved in at start (wasmhooks.NewManager).
CREATE TABLE plugin_modules (
    plugin_id TEXT PRIMARY KEY REFERENCES plugins (id) ON DELETE CASCADE,
    sha256    TEXT NOT NULL,  -- hex of the module's bytes
    manifest  TEXT NOT NULL,  -- manifest.json as installed
    module    BLOB NOT NULL
);
