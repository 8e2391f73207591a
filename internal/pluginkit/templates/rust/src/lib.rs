//! A grin plugin in Rust: it hides e-mail addresses in what a user says
//! before grin reads the message, so no address reaches the model, the
//! conversation history or episodic memory.
//!
//!   grin plugin build .    build, check as the server will, and zip
//!   grin plugin test .     run the examples in examples/
use grin_kit::{log, Ctx, Value, INFO};

// grin looks for this marker: keep it.
grin_kit::export_abi!();

// One export per hook the manifest lists: hook_<name>.
grin_kit::hook!(hook_before_cat_reads_message, redact);

fn redact(ctx: &Ctx, mut payload: Value) -> Result<Option<Value>, String> {
    let text = payload.get("text").as_str().unwrap_or("").to_string();
    let hidden = hide_addresses(&text, ctx.setting("replacement", "[e-mail]"));
    if hidden == text {
        return Ok(None); // None: the payload is unchanged
    }
    payload.set("text", Value::from(hidden));
    log(INFO, &format!("hid an e-mail address for {}", ctx.user_id));
    Ok(Some(payload))
}

fn is_label(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

fn is_local(c: u8) -> bool {
    is_label(c) || matches!(c, b'.' | b'_' | b'%' | b'+')
}

/// Replaces each name@domain.tld in text.
fn hide_addresses(text: &str, replacement: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut done = 0; // text before this is in out
    let mut at = 0;
    while at < b.len() {
        if b[at] != b'@' {
            at += 1;
            continue;
        }
        let mut start = at;
        while start > done && is_local(b[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < b.len() && is_label(b[end]) {
            end += 1;
        }
        let mut dots = 0;
        if start < at && end > at + 1 {
            while end + 1 < b.len() && b[end] == b'.' && is_label(b[end + 1]) {
                end += 1;
                while end < b.len() && is_label(b[end]) {
                    end += 1;
                }
                dots += 1;
            }
        }
        if dots == 0 {
            at += 1;
            continue;
        }
        out.push_str(&text[done..start]);
        out.push_str(replacement);
        done = end;
        at = end;
    }
    out.push_str(&text[done..]);
    out
}
