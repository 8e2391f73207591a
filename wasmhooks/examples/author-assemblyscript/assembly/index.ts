// The seed's example in AssemblyScript, the same plugin as
// wasmhooks/examples/author: every document chunk is stamped with the id
// of the user who uploaded it, and each user recalls only the declarative
// memories they uploaded.
//
//   grin plugin build -o author.zip wasmhooks/examples/author-assemblyscript
import { Ctx, Kind, Value, run } from "@grin-ai/grin-kit/assembly/index";

export { grin_hook_abi_v1 } from "@grin-ai/grin-kit/assembly/index";

export function hook_before_rabbithole_insert_memory(n: i32): i32 {
  return run(n, stampAuthor);
}

export function hook_before_cat_recalls_declarative_memories(n: i32): i32 {
  return run(n, recallOwn);
}

// doc.metadata["author"] = user id
function stampAuthor(ctx: Ctx, doc: Value): Value | null {
  let metadata = doc.get("metadata");
  if (metadata.kind != Kind.Object) {
    metadata = Value.object();
    doc.set("metadata", metadata);
  }
  metadata.set("author", Value.str(ctx.userId));
  return doc;
}

// recall only one's own
function recallOwn(ctx: Ctx, cfg: Value): Value | null {
  cfg.set("metadata", Value.object().set("author", Value.str(ctx.userId)));
  return cfg;
}
