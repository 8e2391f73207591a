//! The seed's example in Rust, the same plugin as wasmhooks/examples/author:
//! every document chunk is stamped with the id of the user who uploaded
//! it, and each user recalls only the declarative memories they uploaded.
//!
//!   grin plugin build -o author.zip wasmhooks/examples/author-rust
use grin_kit::{Ctx, Value};

grin_kit::export_abi!();
grin_kit::hook!(hook_before_rabbithole_insert_memory, stamp_author);
grin_kit::hook!(hook_before_cat_recalls_declarative_memories, recall_own);

/// doc.metadata["author"] = user id
fn stamp_author(ctx: &Ctx, mut doc: Value) -> Result<Option<Value>, String> {
    let mut metadata = doc.remove("metadata").filter(Value::is_object).unwrap_or_else(Value::object);
    metadata.set("author", Value::from(ctx.user_id.as_str()));
    doc.set("metadata", metadata);
    Ok(Some(doc))
}

/// Recall only one's own.
fn recall_own(ctx: &Ctx, mut cfg: Value) -> Result<Option<Value>, String> {
    let mut filter = Value::object();
    filter.set("author", Value::from(ctx.user_id.as_str()));
    cfg.set("metadata", filter);
    Ok(Some(cfg))
}
