// The grin hook kit for AssemblyScript: grin's hook ABI v1 (see
// docs/plugins.md) behind a hook function of (ctx, payload) => payload.
//
//   import { Ctx, Value, run } from "@grin-ai/grin-kit/assembly/index";
//   export { grin_hook_abi_v1 } from "@grin-ai/grin-kit/assembly/index";
//
//   export function hook_before_cat_reads_message(n: i32): i32 {
//     return run(n, shout);
//   }
//
//   function shout(ctx: Ctx, payload: Value): Value | null {
//     payload.set("text", Value.str(payload.get("text").asString().toUpperCase()));
//     return payload; // or null: unchanged
//   }
//
// Build with the options the template's asconfig.json sets:
// --exportStart _initialize (grin runs a module's start under a deadline)
// and --use abort=... (grin provides no env.abort; this kit's abort logs
// the message and traps).

// ---- the host: grin_v1 ----

@external("grin_v1", "input_read")
declare function input_read(ptr: usize, len: i32): i32;

@external("grin_v1", "output_write")
declare function output_write(ptr: usize, len: i32): void;

@external("grin_v1", "error_write")
declare function error_write(ptr: usize, len: i32): void;

@external("grin_v1", "log")
declare function host_log(level: i32, ptr: usize, len: i32): void;

/** The marker grin looks for: export it from your entry file. */
export function grin_hook_abi_v1(): void {}

/** Log levels. */
export const DEBUG: i32 = 0;
export const INFO: i32 = 1;
export const WARN: i32 = 2;
export const ERROR: i32 = 3;

/** Writes a line to grin's log, tagged with the plugin's id. */
export function log(level: i32, message: string): void {
  const b = String.UTF8.encode(message);
  host_log(level, changetype<usize>(b), b.byteLength);
}

/**
 * The abort handler the build points AssemblyScript at (--use abort=...):
 * an assertion or a failed cast logs its message and where, then traps;
 * grin reports the trap and goes on without the hook.
 */
export function abort(message: string | null, file: string | null, line: u32, column: u32): void {
  const m = message == null ? "abort" : message;
  const f = file == null ? "?" : file;
  log(ERROR, m + " at " + f + ":" + line.toString() + ":" + column.toString());
  unreachable();
}

// ---- a hook's context ----

/** Who a hook runs for, and the plugin's settings. */
export class Ctx {
  hook: string = "";
  userId: string = "";
  pluginId: string = "";
  requestId: string = "";
  /** The plugin's settings: an object, as the administrator saved them. */
  settings: Value = Value.object();
  error: string | null = null;

  /** A setting's string, or def when it is missing or not a string. */
  setting(name: string, def: string): string {
    const v = this.settings.get(name);
    return v.kind == Kind.String ? v.asString() : def;
  }

  /** Makes the hook fail with message: return null after calling it. */
  fail(message: string): void {
    this.error = message;
  }
}

/** A hook: the new payload, or null to leave it unchanged. */
export type HookFn = (ctx: Ctx, payload: Value) => Value | null;

/**
 * run is every hook export's body: it reads the host's input, calls fn,
 * and answers 0 (new payload), 1 (error) or 2 (unchanged).
 */
export function run(n: i32, fn: HookFn): i32 {
  const buf = new ArrayBuffer(n);
  if (n > 0) input_read(changetype<usize>(buf), n);
  const p = new Parser(String.UTF8.decode(buf));
  const input = p.parse();
  if (p.failed || input.kind != Kind.Object) {
    return fail("grin-kit: the host's input is not a JSON object: " + p.problem);
  }
  const ctx = new Ctx();
  ctx.hook = input.get("hook").asString();
  const c = input.get("ctx");
  ctx.userId = c.get("user_id").asString();
  ctx.pluginId = c.get("plugin_id").asString();
  ctx.requestId = c.get("request_id").asString();
  const s = input.get("settings");
  if (s.kind == Kind.Object) ctx.settings = s;
  const out = fn(ctx, input.get("payload"));
  if (ctx.error != null) return fail(ctx.error!);
  if (out == null) return 2;
  const b = String.UTF8.encode(out.toJSON());
  output_write(changetype<usize>(b), b.byteLength);
  return 0;
}

function fail(message: string): i32 {
  const b = String.UTF8.encode(message);
  error_write(changetype<usize>(b), b.byteLength);
  return 1;
}

// ---- JSON ----

export enum Kind { Null, Bool, Number, String, Array, Object }

/** A JSON value. Objects keep their keys' order. */
export class Value {
  kind: Kind = Kind.Null;
  b: bool = false;
  /** A number as written, so integers round-trip exactly. */
  num: string = "0";
  s: string = "";
  items: Array<Value> = [];
  keys: Array<string> = [];

  static null(): Value { return new Value(); }
  static bool(b: bool): Value { const v = new Value(); v.kind = Kind.Bool; v.b = b; return v; }
  static number(n: f64): Value { const v = new Value(); v.kind = Kind.Number; v.num = isInteger(n) ? (<i64>n).toString() : n.toString(); return v; }
  static str(s: string): Value { const v = new Value(); v.kind = Kind.String; v.s = s; return v; }
  static array(): Value { const v = new Value(); v.kind = Kind.Array; return v; }
  static object(): Value { const v = new Value(); v.kind = Kind.Object; return v; }
  static parse(text: string): Value | null {
    const p = new Parser(text);
    const v = p.parse();
    return p.failed ? null : v;
  }

  isNull(): bool { return this.kind == Kind.Null; }
  /** The string, or "" when this is not a string. */
  asString(): string { return this.kind == Kind.String ? this.s : ""; }
  asBool(): bool { return this.kind == Kind.Bool && this.b; }
  asNumber(): f64 { return this.kind == Kind.Number ? parseFloat(this.num) : 0; }

  /** The member name of an object, or null (a Value) when absent. */
  get(name: string): Value {
    if (this.kind != Kind.Object) return new Value();
    const i = this.keys.indexOf(name);
    return i < 0 ? new Value() : this.items[i];
  }
  has(name: string): bool { return this.kind == Kind.Object && this.keys.indexOf(name) >= 0; }
  /** Sets an object's member (this becomes an object if it was null). */
  set(name: string, v: Value): Value {
    if (this.kind == Kind.Null) this.kind = Kind.Object;
    const i = this.keys.indexOf(name);
    if (i >= 0) this.items[i] = v;
    else { this.keys.push(name); this.items.push(v); }
    return this;
  }
  /** Removes an object's member. */
  delete(name: string): void {
    const i = this.keys.indexOf(name);
    if (i >= 0) { this.keys.splice(i, 1); this.items.splice(i, 1); }
  }
  /** An array's length. */
  get length(): i32 { return this.kind == Kind.Array ? this.items.length : 0; }
  at(i: i32): Value { return this.kind == Kind.Array && i >= 0 && i < this.items.length ? this.items[i] : new Value(); }
  push(v: Value): Value { if (this.kind == Kind.Null) this.kind = Kind.Array; this.items.push(v); return this; }

  toJSON(): string {
    const out = new Array<string>();
    this.write(out);
    return out.join("");
  }

  private write(out: Array<string>): void {
    switch (this.kind) {
      case Kind.Null: out.push("null"); break;
      case Kind.Bool: out.push(this.b ? "true" : "false"); break;
      case Kind.Number: out.push(this.num); break;
      case Kind.String: out.push(quote(this.s)); break;
      case Kind.Array: {
        out.push("[");
        for (let i = 0; i < this.items.length; i++) {
          if (i > 0) out.push(",");
          this.items[i].write(out);
        }
        out.push("]");
        break;
      }
      default: {
        out.push("{");
        for (let i = 0; i < this.keys.length; i++) {
          if (i > 0) out.push(",");
          out.push(quote(this.keys[i]));
          out.push(":");
          this.items[i].write(out);
        }
        out.push("}");
      }
    }
  }
}

function isInteger(n: f64): bool {
  return n == Math.floor(n) && Math.abs(n) < 9007199254740992;
}

const HEX = "0123456789abcdef";

function quote(s: string): string {
  const out = new Array<string>();
  out.push("\"");
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out.push(s.substring(from, i));
    if (c == 0x22) out.push("\\\"");
    else if (c == 0x5c) out.push("\\\\");
    else if (c == 0x0a) out.push("\\n");
    else if (c == 0x0d) out.push("\\r");
    else if (c == 0x09) out.push("\\t");
    else out.push("\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15));
    from = i + 1;
  }
  out.push(s.substring(from));
  out.push("\"");
  return out.join("");
}

class Parser {
  text: string;
  i: i32 = 0;
  failed: bool = false;
  problem: string = "";

  constructor(text: string) { this.text = text; }

  parse(): Value {
    const v = this.value(0);
    this.space();
    if (!this.failed && this.i < this.text.length) this.error("text after the value");
    return v;
  }

  private error(what: string): Value {
    if (!this.failed) {
      this.failed = true;
      this.problem = what + " at offset " + this.i.toString();
    }
    return new Value();
  }

  private space(): void {
    while (this.i < this.text.length) {
      const c = this.text.charCodeAt(this.i);
      if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) break;
      this.i++;
    }
  }

  private value(depth: i32): Value {
    if (depth > 512) return this.error("nesting too deep");
    this.space();
    if (this.i >= this.text.length) return this.error("a value is missing");
    const c = this.text.charCodeAt(this.i);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) { const s = this.string(); return this.failed ? new Value() : Value.str(s); }
    if (this.word("true")) return Value.bool(true);
    if (this.word("false")) return Value.bool(false);
    if (this.word("null")) return new Value();
    return this.number();
  }

  private word(w: string): bool {
    if (this.text.substr(this.i, w.length) == w) { this.i += w.length; return true; }
    return false;
  }

  private number(): Value {
    const start = this.i;
    while (this.i < this.text.length) {
      const c = this.text.charCodeAt(this.i);
      if ((c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x2b || c == 0x2e || c == 0x65 || c == 0x45) this.i++;
      else break;
    }
    if (this.i == start) return this.error("unexpected character");
    const v = new Value();
    v.kind = Kind.Number;
    v.num = this.text.substring(start, this.i);
    return v;
  }

  private string(): string {
    this.i++; // the opening quote
    const out = new Array<string>();
    let from = this.i;
    while (this.i < this.text.length) {
      const c = this.text.charCodeAt(this.i);
      if (c == 0x22) {
        out.push(this.text.substring(from, this.i));
        this.i++;
        return out.join("");
      }
      if (c == 0x5c) {
        out.push(this.text.substring(from, this.i));
        const e = this.text.charCodeAt(this.i + 1);
        this.i += 2;
        if (e == 0x6e) out.push("\n");
        else if (e == 0x74) out.push("\t");
        else if (e == 0x72) out.push("\r");
        else if (e == 0x62) out.push("\b");
        else if (e == 0x66) out.push("\f");
        else if (e == 0x75) {
          const code = <i32>parseInt(this.text.substr(this.i, 4), 16);
          out.push(String.fromCharCode(code));
          this.i += 4;
        } else out.push(String.fromCharCode(e));
        from = this.i;
        continue;
      }
      this.i++;
    }
    this.error("a string is not closed");
    return "";
  }

  private array(depth: i32): Value {
    this.i++;
    const v = Value.array();
    this.space();
    if (this.i < this.text.length && this.text.charCodeAt(this.i) == 0x5d) { this.i++; return v; }
    while (!this.failed) {
      v.items.push(this.value(depth + 1));
      this.space();
      if (this.i >= this.text.length) return this.error("an array is not closed");
      const c = this.text.charCodeAt(this.i++);
      if (c == 0x5d) return v;
      if (c != 0x2c) return this.error("expected , or ]");
    }
    return v;
  }

  private object(depth: i32): Value {
    this.i++;
    const v = Value.object();
    this.space();
    if (this.i < this.text.length && this.text.charCodeAt(this.i) == 0x7d) { this.i++; return v; }
    while (!this.failed) {
      this.space();
      if (this.i >= this.text.length || this.text.charCodeAt(this.i) != 0x22) return this.error("expected a member name");
      const k = this.string();
      this.space();
      if (this.i >= this.text.length || this.text.charCodeAt(this.i) != 0x3a) return this.error("expected :");
      this.i++;
      v.set(k, this.value(depth + 1));
      this.space();
      if (this.i >= this.text.length) return this.error("an object is not closed");
      const c = this.text.charCodeAt(this.i++);
      if (c == 0x7d) return v;
      if (c != 0x2c) return this.error("expected , or }");
    }
    return v;
  }
}
