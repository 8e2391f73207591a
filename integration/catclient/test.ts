// Runs the Cheshire Cat's official TypeScript client, ccat-api 0.12.1,
// against a running grin and checks every response against the client's own
// types (JSON schemas generated from shapes.ts, which aliases them). The Go
// test in integration/ (catclient_test.go) builds grin, starts it in one of
// three authentication modes and runs this file with:
//
//	GRIN_URL             the server, http://127.0.0.1:port
//	GRIN_MODE            "off" (no credentials), "keys" (GRIN_API_KEY) or "jwt"
//	GRIN_API_KEY         the key both HTTP and WebSocket accept (mode "keys")
//	GRIN_ADMIN_PASSWORD  the admin's password
//	GRIN_PLUGIN_ZIP      a plugin built from wasmhooks/examples/author, zipped
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import FormData from "form-data";
import { Ajv } from "ajv";
import { createGenerator } from "ts-json-schema-generator";
import { ApiError, CatClient, isMessageResponse, isTokenResponse } from "ccat-api";
import type { SocketResponse } from "ccat-api";
import type * as shapes from "./shapes.js";

const url = new URL(process.env.GRIN_URL ?? "");
const mode = process.env.GRIN_MODE ?? "off";
const apiKey = process.env.GRIN_API_KEY;
const adminPassword = process.env.GRIN_ADMIN_PASSWORD ?? "";
const pluginZip = process.env.GRIN_PLUGIN_ZIP ?? "";

// The client's types as JSON schemas; extra fields are allowed, as they are
// by TypeScript's structural types.
const schema = createGenerator({
  path: "shapes.ts",
  tsconfig: "tsconfig.json",
  type: "*",
  expose: "export",
  additionalProperties: true,
  skipTypeCheck: true,
}).createSchema("*");
const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addSchema(schema, "shapes");

// The types a response is checked against, by name.
type Shapes = {
  CatMessage: shapes.CatMessage; CollectionsList: shapes.CollectionsList; DeleteResponse: shapes.DeleteResponse;
  FileResponse: shapes.FileResponse; History: shapes.History; JWTResponse: shapes.JWTResponse;
  MemoryRecall: shapes.MemoryRecall; MemoryUpload: shapes.MemoryUpload; Mimetypes: shapes.Mimetypes;
  Permissions: shapes.Permissions; Plugin: shapes.Plugin; PluginSettings: shapes.PluginSettings;
  PluginsList: shapes.PluginsList; Setting: shapes.Setting; SettingsResponse: shapes.SettingsResponse;
  SocketResponse: shapes.SocketResponse; Status: shapes.Status; ToggleResponse: shapes.ToggleResponse;
  UserList: shapes.UserList; UserResponse: shapes.UserResponse; WebResponse: shapes.WebResponse;
};

// check asserts that value is what the client declares, and returns it.
function check<N extends keyof Shapes>(name: N, value: Shapes[N]): Shapes[N] {
  const validate = ajv.getSchema(`shapes#/definitions/${name}`);
  assert.ok(validate, `no schema for ${name}`);
  if (!validate(value)) {
    assert.fail(`${name} does not match the client's type: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value, null, 2)}`);
  }
  return value;
}

// rejects asserts that a call fails with an ApiError of the given status
// whose body says something a person can read.
async function rejects(call: Promise<unknown>, status: number, says: RegExp) {
  try {
    await call;
  } catch (err) {
    assert.ok(err instanceof ApiError, `not an ApiError: ${err}`);
    assert.equal(err.status, status, JSON.stringify(err.body));
    assert.match(JSON.stringify(err.body), says);
    return;
  }
  assert.fail(`expected a ${status}`);
}

// Work-around for a bug of ccat-api 0.12.1 under Node: its multipart uploads
// append the caller's Blob to a `form-data` instance, which only takes
// strings, Buffers and streams, so every upload fails before it is sent
// (installPlugin, uploadFile, uploadMemory). Here the request layer is
// wrapped: the form fields go into a `form-data` instance with each Blob's
// bytes as a Buffer, handed to the client's own transport as the body. The
// Blobs' bytes are kept when the test makes them, since reading a Blob is
// asynchronous and the request layer is not.
const blobBytes = new WeakMap<Blob, { bytes: Buffer; name: string }>();
function file(name: string, type: string, bytes: Buffer): File {
  const f = new File([new Uint8Array(bytes)], name, { type });
  blobBytes.set(f, { bytes, name });
  return f;
}
function patchMultipart(cat: CatClient) {
  const http = cat.api!.request;
  const send = http.request.bind(http);
  http.request = (options) => {
    if (!options.formData) return send(options);
    const form = new FormData();
    for (const [key, value] of Object.entries(options.formData)) {
      if (value === undefined || value === null) continue;
      const blob = value instanceof Blob ? blobBytes.get(value) : undefined;
      if (value instanceof Blob) {
        assert.ok(blob, "upload a Blob made by file()");
        form.append(key, blob.bytes, { filename: blob.name, contentType: value.type });
      } else {
        form.append(key, typeof value === "string" ? value : JSON.stringify(value));
      }
    }
    return send({ ...options, formData: undefined, mediaType: undefined, body: form });
  };
}

// connect makes a client for one credential and user, waits for its socket
// to open and collects what arrives on it.
async function connect(credential: string | undefined, userId = "user") {
  const frames: SocketResponse[] = [];
  const errors: unknown[] = [];
  const waiters: Array<() => void> = [];
  const cat = new CatClient({ host: url.hostname, port: Number(url.port), credential, userId, ws: { retries: 1 } });
  patchMultipart(cat);
  cat.onMessage((m) => {
    frames.push(m);
    waiters.splice(0).forEach((w) => w());
  });
  cat.onError((e) => errors.push(e));
  await new Promise<void>((resolve, reject) => {
    cat.onConnected(resolve);
    cat.onDisconnected(() => reject(new Error(`the socket closed: ${JSON.stringify(errors)}`)));
  });
  cat.onDisconnected(() => {});
  // reply sends text and waits for the cat's answer.
  const reply = async (text: string) => {
    const from = frames.length;
    cat.send({ text });
    for (;;) {
      const done = frames.slice(from).find((f) => f.type === "chat");
      if (done) return { done, streamed: frames.slice(from) };
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { cat, api: cat.api!, reply, errors };
}

test(`ccat-api 0.12.1 against grin, authentication ${mode}`, async (t) => {
  // An anonymous client logs in; the token is the credential in JWT mode.
  const anon = new CatClient({ host: url.hostname, port: Number(url.port), instant: false });
  anon.init().close();
  const api0 = anon.api!;
  const perms = check("Permissions", await api0.userAuth.getAvailablePermissions()) as shapes.Permissions;
  assert.deepEqual(perms.MEMORY, ["WRITE", "EDIT", "LIST", "READ", "DELETE"]);
  await rejects(api0.userAuth.authToken({ username: "admin", password: "not the password" }), 403, /Invalid Credentials/);
  const token = check("JWTResponse", await api0.userAuth.authToken({ username: "admin", password: adminPassword })) as shapes.JWTResponse;
  assert.equal(token.token_type, "bearer");

  const credential = mode === "keys" ? apiKey : mode === "jwt" ? token.access_token : undefined;
  const admin = await connect(credential);
  const api = admin.api;
  check("Status", await api.status.home());

  await t.test("users", async () => {
    const created = check("UserResponse", await api.users.createUser({ username: `alice-${mode}`, password: "wonderland", permissions: { CONVERSATION: ["WRITE", "READ"], MEMORY: ["READ", "LIST"] } })) as shapes.UserResponse;
    const all = check("UserList", await api.users.readUsers(0, 100)) as shapes.UserList;
    assert.ok(all.some((u) => u.id === created.id));
    check("UserResponse", await api.users.readUser(created.id));
    const renamed = check("UserResponse", await api.users.updateUser(created.id, { username: `alice-${mode}-2` })) as shapes.UserResponse;
    assert.equal(renamed.username, `alice-${mode}-2`);
    await rejects(api.users.readUser("no-such-user"), 404, /User not found/);
    check("UserResponse", await api.users.deleteUser(created.id));
  });

  await t.test("chat over the socket and over HTTP", async () => {
    const { done, streamed } = await admin.reply("My favourite colour is blue");
    check("SocketResponse", done);
    assert.ok(isMessageResponse(done), "the client does not take the chat frame for a message");
    const msg = done as SocketResponse & Record<string, unknown>;
    assert.equal(msg.who, "AI");
    assert.equal(typeof msg.text, "string");
    assert.equal(msg.content, msg.text);
    assert.equal(msg.message, msg.text);
    assert.equal(typeof msg.when, "number");
    assert.ok(msg.why && Array.isArray(msg.why.model_interactions));
    for (const f of streamed.filter((f) => f.type === "chat_token")) assert.ok(isTokenResponse(f));

    const http = check("CatMessage", await api.status.messageWithCat({ text: "And my cat is called Dinah" })) as shapes.CatMessage & Record<string, unknown>;
    assert.equal(http.type, "chat");
    assert.equal(http.who, "AI");
    assert.equal(http.text, http.content);
    assert.equal(http.message, http.text);
    assert.equal(typeof http.when, "number");
    const why = http.why as Record<string, any>;
    assert.equal(why.input, "And my cat is called Dinah");
    for (const mi of why.model_interactions as Array<Record<string, unknown>>) {
      assert.ok(mi.model_type === "llm" || mi.model_type === "embedder", JSON.stringify(mi));
      for (const k of ["source", "prompt", "input_tokens", "started_at", "reply"]) assert.ok(k in mi, `model interaction without ${k}`);
      if (mi.model_type === "llm") for (const k of ["output_tokens", "ended_at"]) assert.ok(k in mi, `LLM interaction without ${k}`);
    }
  });

  await t.test("memory", async () => {
    const recall = check("MemoryRecall", await api.memory.recallMemoriesFromText("favourite colour", 5)) as shapes.MemoryRecall;
    assert.equal(recall.query.text, "favourite colour");
    assert.ok(recall.vectors.collections.episodic.some((m) => m.page_content === "My favourite colour is blue"), JSON.stringify(recall.vectors.collections.episodic));
    assert.ok(recall.vectors.collections.episodic.length <= 5);

    const history = check("History", await api.memory.getConversationHistory()) as shapes.History;
    assert.deepEqual(history.history.map((h) => h.who), ["Human", "AI", "Human", "AI"]);
    assert.equal(history.history[0].message, "My favourite colour is blue");
    assert.ok(history.history[1].why, "an AI turn carries its why");

    const collections = check("CollectionsList", await api.memory.getCollections()) as shapes.CollectionsList;
    assert.deepEqual(collections.collections.map((c) => c.name).sort(), ["declarative", "episodic", "procedural"]);

    const id = recall.vectors.collections.episodic[0].id;
    check("DeleteResponse", await api.memory.deletePointInMemory("episodic", id));
    check("DeleteResponse", await api.memory.wipeMemoryPoints("episodic"));
    const after = check("MemoryRecall", await api.memory.recallMemoriesFromText("favourite colour")) as shapes.MemoryRecall;
    assert.deepEqual(after.vectors.collections.episodic, []);
    check("DeleteResponse", await api.memory.wipeSingleCollection("episodic"));
    check("DeleteResponse", await api.memory.wipeSingleCollection("procedural"));
    check("DeleteResponse", await api.memory.wipeCollections());
    check("DeleteResponse", await api.memory.wipeConversationHistory());
    const empty = check("History", await api.memory.getConversationHistory()) as shapes.History;
    assert.deepEqual(empty.history, []);
  });

  await t.test("rabbit hole", async () => {
    const types = check("Mimetypes", await api.rabbitHole.getAllowedMimetypes()) as shapes.Mimetypes;
    assert.ok(types.allowed?.includes("text/plain"));
    const doc = file("hatter.txt", "text/plain", Buffer.from("The Hatter's tea party never ends; it is always six o'clock."));
    const up = check("FileResponse", await api.rabbitHole.uploadFile({ file: doc, chunk_size: 256, chunk_overlap: 32, metadata: JSON.stringify({ book: "wonderland" }) })) as shapes.FileResponse;
    assert.equal(up.filename, "hatter.txt");
    assert.equal(up.content_type, "text/plain");
    const exported = { embedder: { name: "EmbedderDumbConfig" }, collections: { declarative: [{ id: "1", page_content: "The Queen of Hearts made tarts.", metadata: { source: "export", when: 1 }, vector: [] }] } };
    check("MemoryUpload", await api.rabbitHole.uploadMemory({ file: file("memory.json", "application/json", Buffer.from(JSON.stringify(exported))) }));
    // grin reads no address on this machine's own network; the client is told so.
    await rejects(api.rabbitHole.uploadUrl({ url: "http://127.0.0.1:1/nothing-here" }), 400, /Unable to reach the URL/);
    check("DeleteResponse", await api.memory.wipeMemoryPoints("declarative", {}));
  });

  await t.test("language model, embedder and auth handler settings", async () => {
    // A model server speaking the OpenAI protocol, for grin to check the
    // settings against (grin contacts a model server before saving).
    const models = createServer((req, res) => {
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify(req.url === "/v1/models" ? { data: [{ id: "gpt-4o-mini" }, { id: "llama3" }] } : {}));
    });
    await new Promise<void>((r) => models.listen(0, "127.0.0.1", r));
    t.after(() => models.close());
    const modelServer = `http://127.0.0.1:${(models.address() as AddressInfo).port}`;

    const llms = check("SettingsResponse", await api.llm.getLlmsSettings()) as shapes.SettingsResponse;
    for (const name of ["LLMDefaultConfig", "LLMOpenAIConfig", "LLMOllamaConfig"]) assert.ok(llms.settings.some((s) => s.name === name), `no ${name} in ${llms.settings.map((s) => s.name)}`);
    check("Setting", await api.llm.getLlmSettings("LLMOpenAIConfig"));
    // The client README's own example.
    const openai = check("Setting", await api.llm.upsertLlmSetting("LLMOpenAIConfig", { openai_api_key: "sk-ccat-client-test", model_name: "gpt-4o-mini", temperature: 0.7, streaming: true, base_url: `${modelServer}/v1` })) as shapes.Setting;
    assert.equal(openai.name, "LLMOpenAIConfig");
    assert.equal(openai.value.model_name, "gpt-4o-mini");
    assert.ok(!JSON.stringify(openai).includes("sk-ccat-client-test"), "the API key came back");
    const selected = check("SettingsResponse", await api.llm.getLlmsSettings()) as shapes.SettingsResponse;
    assert.equal(selected.selected_configuration, "LLMOpenAIConfig");
    assert.ok(!JSON.stringify(selected).includes("sk-ccat-client-test"), "the API key came back");
    check("Setting", await api.llm.upsertLlmSetting("LLMOllamaConfig", { base_url: modelServer, model: "llama3", num_ctx: 2048, repeat_last_n: 64, repeat_penalty: 1.1, temperature: 0.8 }));
    check("Setting", await api.llm.upsertLlmSetting("LLMDefaultConfig", {}));

    const embedders = check("SettingsResponse", await api.embedder.getEmbeddersSettings()) as shapes.SettingsResponse;
    for (const name of ["EmbedderDumbConfig", "EmbedderOpenAIConfig"]) assert.ok(embedders.settings.some((s) => s.name === name), `no ${name}`);
    check("Setting", await api.embedder.getEmbedderSettings("EmbedderDumbConfig"));
    check("Setting", await api.embedder.upsertEmbedderSetting("EmbedderDumbConfig", {}));

    const handlers = check("SettingsResponse", await api.authHandler.getAuthHandlerSettings()) as shapes.SettingsResponse;
    const name = handlers.selected_configuration ?? handlers.settings[0].name;
    const handler = check("Setting", await api.authHandler.getAuthHandlerSetting(name)) as shapes.Setting;
    check("Setting", await api.authHandler.upsertAuthenticatorSetting(name, handler.value));
  });

  await t.test("settings", async () => {
    const created = check("Setting", await api.settings.createSetting({ name: "ccat-client-test", value: { colour: "blue" }, category: "test" })) as shapes.Setting & { setting_id?: string };
    assert.equal(created.name, "ccat-client-test");
    assert.ok(created.setting_id, "no setting_id");
    const found = check("SettingsResponse", await api.settings.getSettings("ccat-client")) as shapes.SettingsResponse;
    assert.deepEqual(found.settings.map((s) => s.name), ["ccat-client-test"]);
    check("Setting", await api.settings.getSetting(created.setting_id));
    const updated = check("Setting", await api.settings.updateSetting(created.setting_id, { name: "ccat-client-test", value: { colour: "red" } })) as shapes.Setting;
    assert.equal(updated.value.colour, "red");
    await api.settings.deleteSetting(created.setting_id);
    await rejects(api.settings.getSetting(created.setting_id), 404, /No setting with this id/);
    // Nothing secret is ever listed: no key, no password hash.
    const all = check("SettingsResponse", await api.settings.getSettings()) as shapes.SettingsResponse;
    const text = JSON.stringify(all);
    assert.ok(!text.includes("sk-ccat-client-test"), "a key is listed");
    assert.ok(!/\$2[aby]\$/.test(text), "a password hash is listed");
  });

  await t.test("plugins", async () => {
    const zip = file("author.zip", "application/zip", readFileSync(pluginZip));
    const installed = check("FileResponse", await api.plugins.installPlugin({ file: zip })) as shapes.FileResponse;
    assert.equal(installed.content_type, "application/zip");
    const list = check("PluginsList", await api.plugins.listAvailablePlugins()) as shapes.PluginsList;
    assert.ok(list.installed.some((p) => p.id === "author"));
    const filtered = check("PluginsList", await api.plugins.listAvailablePlugins("no such plugin")) as shapes.PluginsList;
    assert.equal(filtered.filters.query, "no such plugin");
    assert.deepEqual(filtered.installed, []);
    const plugin = check("Plugin", await api.plugins.getPluginDetails("author")) as shapes.Plugin;
    assert.deepEqual(plugin.hooks?.map((h) => h.name).sort(), ["before_cat_recalls_declarative_memories", "before_rabbithole_insert_memory"]);
    const toggled = check("ToggleResponse", await api.plugins.togglePlugin("author")) as shapes.ToggleResponse;
    assert.match(toggled.info, /author/);
    check("SettingsResponse", await api.plugins.getPluginsSettings());
    const settings = check("PluginSettings", await api.plugins.getPluginSettings("author")) as shapes.PluginSettings;
    check("Setting", await api.plugins.upsertPluginSettings("author", settings.value));
    await rejects(api.plugins.installPluginFromRegistry({ url: "https://github.com/cheshire-cat-ai/plugin" }), 501, /no plugin registry/);
    check("DeleteResponse", await api.plugins.deletePlugin("author"));
  });

  if (mode === "jwt") {
    await t.test("a user without settings permission is refused", async () => {
      const u = await api.users.createUser({ username: "dodo", password: "caucus-race" });
      const tok = await api0.userAuth.authToken({ username: "dodo", password: "caucus-race" });
      const dodo = await connect(tok.access_token);
      await rejects(dodo.api.settings.getSettings(), 403, /./);
      await rejects(dodo.api.llm.upsertLlmSetting("LLMDefaultConfig", {}), 403, /./);
      const { done } = await dodo.reply("I run in circles");
      assert.equal(done.user_id, u.id);
      dodo.cat.close();
    });
  }

  admin.cat.close();
});
