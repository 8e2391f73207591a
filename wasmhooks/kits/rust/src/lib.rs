//! The grin hook kit for Rust: grin's hook ABI v1 (see docs/plugins.md)
//! behind a hook function of (ctx, payload) -> new payload, and a small
//! JSON value. No dependencies, so a plugin builds offline, with Debian's
//! rustc and libstd-rust-dev-wasm32 or rustup's wasm32-unknown-unknown.
//!
//! ```ignore
//! use grin_kit::{Ctx, Value};
//!
//! grin_kit::export_abi!();
//! grin_kit::hook!(hook_before_cat_reads_message, shout);
//!
//! fn shout(_ctx: &Ctx, mut payload: Value) -> Result<Option<Value>, String> {
//!     let text = payload.get("text").as_str().unwrap_or("").to_uppercase();
//!     payload.set("text", Value::from(text));
//!     Ok(Some(payload)) // Ok(None): unchanged; Err(message): an error
//! }
//! ```
//!
//! Build (grin plugin build does it): a cdylib for wasm32-unknown-unknown,
//! e.g. `cargo build --release --target wasm32-unknown-unknown`.

use std::fmt::Write;

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "grin_v1")]
extern "C" {
    fn input_read(ptr: *mut u8, len: i32) -> i32;
    fn output_write(ptr: *const u8, len: i32);
    fn error_write(ptr: *const u8, len: i32);
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: i32);
}

// Outside WebAssembly (cargo test) the host is absent: reads give nothing
// and writes go nowhere.
#[cfg(not(target_arch = "wasm32"))]
unsafe fn input_read(_ptr: *mut u8, _len: i32) -> i32 {
    0
}
#[cfg(not(target_arch = "wasm32"))]
unsafe fn output_write(_ptr: *const u8, _len: i32) {}
#[cfg(not(target_arch = "wasm32"))]
unsafe fn error_write(_ptr: *const u8, _len: i32) {}
#[cfg(not(target_arch = "wasm32"))]
unsafe fn host_log(_level: i32, _ptr: *const u8, _len: i32) {}

/// Exports the marker grin looks for (`grin_hook_abi_v1`): call it once
/// in your lib.rs.
#[macro_export]
macro_rules! export_abi {
    () => {
        #[no_mangle]
        pub extern "C" fn grin_hook_abi_v1() {}
    };
}

/// Exports a hook: `hook!(hook_<hook name>, function)`; the name is the
/// export the manifest's hook needs.
#[macro_export]
macro_rules! hook {
    ($export:ident, $f:path) => {
        #[no_mangle]
        pub extern "C" fn $export(n: i32) -> i32 {
            $crate::run(n, $f)
        }
    };
}

/// Log levels.
pub const DEBUG: i32 = 0;
pub const INFO: i32 = 1;
pub const WARN: i32 = 2;
pub const ERROR: i32 = 3;

/// Writes a line to grin's log, tagged with the plugin's id.
pub fn log(level: i32, message: &str) {
    unsafe { host_log(level, message.as_ptr(), message.len() as i32) }
}

/// Who a hook runs for, and the plugin's settings.
pub struct Ctx {
    pub hook: String,
    pub user_id: String,
    pub plugin_id: String,
    pub request_id: String,
    /// The plugin's settings: an object, as the administrator saved them.
    pub settings: Value,
}

impl Ctx {
    /// A setting's string, or `default` when it is missing or not a string.
    pub fn setting<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.settings.get(name).as_str().unwrap_or(default)
    }
}

/// A hook: `Ok(Some(new payload))`, `Ok(None)` for unchanged, or
/// `Err(message)`, which grin logs before going on without the hook.
pub type HookFn = fn(&Ctx, Value) -> Result<Option<Value>, String>;

/// The body of every hook export: reads the host's input, calls `f`, and
/// answers 0 (new payload), 1 (error) or 2 (unchanged). A panic is logged
/// with its message and traps; grin reports it and goes on.
pub fn run(n: i32, f: HookFn) -> i32 {
    std::panic::set_hook(Box::new(|info| log(ERROR, &info.to_string())));
    let mut buf = vec![0u8; n.max(0) as usize];
    if n > 0 {
        unsafe { input_read(buf.as_mut_ptr(), n) };
    }
    let input = match std::str::from_utf8(&buf).map_err(|e| e.to_string()).and_then(Value::parse) {
        Ok(v) => v,
        Err(e) => return fail(&format!("grin-kit: the host's input is not JSON: {}", e)),
    };
    let c = input.get("ctx");
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let ctx = Ctx {
        hook: text(input.get("hook")),
        user_id: text(c.get("user_id")),
        plugin_id: text(c.get("plugin_id")),
        request_id: text(c.get("request_id")),
        settings: match input.get("settings") {
            Value::Object(o) => Value::Object(o.clone()),
            _ => Value::Object(Vec::new()),
        },
    };
    let payload = match input {
        Value::Object(members) => members.into_iter().find(|(k, _)| k == "payload").map(|(_, v)| v).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    match f(&ctx, payload) {
        Ok(Some(v)) => {
            let out = v.to_json();
            unsafe { output_write(out.as_ptr(), out.len() as i32) };
            0
        }
        Ok(None) => 2,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> i32 {
    unsafe { error_write(message.as_ptr(), message.len() as i32) };
    1
}

/// A JSON value. Objects keep their members' order; numbers keep their
/// text, so integers round-trip exactly.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
}

static NULL: Value = Value::Null;

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n.to_string())
    }
}

impl Value {
    /// An empty object.
    pub fn object() -> Value {
        Value::Object(Vec::new())
    }

    /// The member `name` of an object (Null when absent or not an object).
    pub fn get(&self, name: &str) -> &Value {
        match self {
            Value::Object(m) => m.iter().find(|(k, _)| k == name).map(|(_, v)| v).unwrap_or(&NULL),
            _ => &NULL,
        }
    }

    /// Sets an object's member (a Null becomes an object first); returns
    /// self, so calls chain.
    pub fn set(&mut self, name: &str, v: Value) -> &mut Value {
        if let Value::Null = self {
            *self = Value::object();
        }
        if let Value::Object(m) = self {
            match m.iter_mut().find(|(k, _)| k == name) {
                Some(member) => member.1 = v,
                None => m.push((name.to_string(), v)),
            }
        }
        self
    }

    /// Removes an object's member.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        if let Value::Object(m) = self {
            if let Some(i) = m.iter().position(|(k, _)| k == name) {
                return Some(m.remove(i).1);
            }
        }
        None
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.parse().ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// The value as compact JSON.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(n),
            Value::String(s) => quote(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    quote(k, out);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }

    /// Parses JSON text.
    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser { b: text.as_bytes(), i: 0 };
        let v = p.value(0)?;
        p.space();
        if p.i < p.b.len() {
            return Err(format!("text after the value at offset {}", p.i));
        }
        Ok(v)
    }
}

fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{} at offset {}", what, self.i))
    }

    fn space(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 512 {
            return self.err("nesting too deep");
        }
        self.space();
        match self.b.get(self.i) {
            None => self.err("a value is missing"),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(_) => {
                for (word, v) in [("true", Value::Bool(true)), ("false", Value::Bool(false)), ("null", Value::Null)] {
                    if self.b[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                let start = self.i;
                while self.i < self.b.len() && matches!(self.b[self.i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    self.i += 1;
                }
                if self.i == start {
                    return self.err("unexpected character");
                }
                Ok(Value::Number(String::from_utf8_lossy(&self.b[start..self.i]).into_owned()))
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.b.get(self.i..self.i + 4).ok_or_else(|| format!("a short \\u escape at offset {}", self.i))?;
        let s = std::str::from_utf8(h).map_err(|e| e.to_string())?;
        self.i += 4;
        u32::from_str_radix(s, 16).map_err(|_| format!("a bad \\u escape at offset {}", self.i))
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        while self.i < self.b.len() {
            let c = self.b[self.i];
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let e = *self.b.get(self.i).ok_or_else(|| "a string is not closed".to_string())?;
                    self.i += 1;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xd800..0xdc00).contains(&code) && self.b[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let low = self.hex4()?;
                                code = 0x10000 + ((code - 0xd800) << 10) + (low.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        other => other as char,
                    };
                    let mut tmp = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
                }
                c => out.push(c),
            }
        }
        self.err("a string is not closed")
    }

    fn array(&mut self, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.space();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.space();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                _ => return self.err("expected , or ]"),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, String> {
        self.i += 1;
        let mut v = Value::object();
        self.space();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(v);
        }
        loop {
            self.space();
            if self.b.get(self.i) != Some(&b'"') {
                return self.err("expected a member name");
            }
            let k = self.string()?;
            self.space();
            if self.b.get(self.i) != Some(&b':') {
                return self.err("expected :");
            }
            self.i += 1;
            let member = self.value(depth + 1)?;
            v.set(&k, member);
            self.space();
            match self.b.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(v);
                }
                _ => return self.err("expected , or }"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = r#"{"a":[1,2.5e3,true,null],"b":{"c":"q\"\\\n\u00e9\ud83d\ude00"},"n":-0}"#;
        let v = Value::parse(text).unwrap();
        assert_eq!(v.get("b").get("c").as_str(), Some("q\"\\\né😀"));
        assert_eq!(Value::parse(&v.to_json()).unwrap(), v);
        assert!(Value::parse("{\"a\":").is_err());
        assert!(Value::parse("[1] x").is_err());
    }
}
