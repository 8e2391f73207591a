// A grin plugin in AssemblyScript: it hides e-mail addresses in what a
// user says before grin reads the message, so no address reaches the
// model, the conversation history or episodic memory.
//
//   grin plugin build .    build, check as the server will, and zip
//   grin plugin test .     run the examples in examples/
import { Ctx, Value, run, log, INFO } from "@grin-ai/grin-kit/assembly/index";

// grin looks for this marker: keep it.
export { grin_hook_abi_v1 } from "@grin-ai/grin-kit/assembly/index";

// One export per hook the manifest lists: hook_<name>(n: i32): i32.
export function hook_before_cat_reads_message(n: i32): i32 {
  return run(n, redact);
}

function redact(ctx: Ctx, payload: Value): Value | null {
  const text = payload.get("text").asString();
  const hidden = hideAddresses(text, ctx.setting("replacement", "[e-mail]"));
  if (hidden == text) return null; // null: the payload is unchanged
  payload.set("text", Value.str(hidden));
  log(INFO, "hid an e-mail address for " + ctx.userId);
  return payload;
}

function isLocal(c: i32): bool {
  return isLabel(c) || c == 0x2e || c == 0x5f || c == 0x25 || c == 0x2b; // . _ % +
}

function isLabel(c: i32): bool {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d;
}

// hideAddresses replaces each name@domain.tld in text.
function hideAddresses(text: string, replacement: string): string {
  let out = "";
  let done = 0; // text before this is in out
  for (let at = text.indexOf("@"); at >= 0; at = text.indexOf("@", at + 1)) {
    let start = at;
    while (start > done && isLocal(text.charCodeAt(start - 1))) start--;
    if (start == at) continue;
    let end = at + 1;
    while (end < text.length && isLabel(text.charCodeAt(end))) end++;
    if (end == at + 1) continue;
    let dots = 0;
    while (end + 1 < text.length && text.charCodeAt(end) == 0x2e && isLabel(text.charCodeAt(end + 1))) {
      end++;
      while (end < text.length && isLabel(text.charCodeAt(end))) end++;
      dots++;
    }
    if (dots == 0) continue;
    out += text.substring(done, start) + replacement;
    done = end;
    at = end - 1;
  }
  return out + text.substring(done);
}
