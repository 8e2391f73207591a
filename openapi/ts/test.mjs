// Runs the TypeScript client's calls against a running grin: GRIN_URL and
// GRIN_ADMIN_PASSWORD name it (the Go test in integration/ starts the
// binary and runs this file).
import { test } from "node:test";
import assert from "node:assert/strict";
import createClient from "openapi-fetch";

const baseUrl = process.env.GRIN_URL;
const password = process.env.GRIN_ADMIN_PASSWORD;

test("log in, create a user, send a message, recall", async () => {
  assert.ok(baseUrl, "GRIN_URL must name a running grin");
  const anon = createClient({ baseUrl });
  const bad = await anon.POST("/auth/token", { body: { username: "admin", password: "wrong" } });
  assert.equal(bad.response.status, 403);

  const { data: token, error } = await anon.POST("/auth/token", { body: { username: "admin", password } });
  assert.ok(token, JSON.stringify(error));
  const admin = createClient({ baseUrl, headers: { Authorization: `Bearer ${token.access_token}` } });

  const created = await admin.POST("/users", {
    body: { username: "ts-user", password: "ts-password", permissions: { CONVERSATION: ["WRITE", "READ"], MEMORY: ["READ"] } },
  });
  assert.equal(created.response.status, 200, JSON.stringify(created.error));
  assert.equal(created.data.username, "ts-user");
  assert.ok(!("password" in created.data));

  const { data: userToken } = await anon.POST("/auth/token", { body: { username: "ts-user", password: "ts-password" } });
  const user = createClient({ baseUrl, headers: { Authorization: `Bearer ${userToken.access_token}` } });
  const reply = await user.POST("/message", { body: { text: "My teacup has a crack" } });
  assert.equal(reply.response.status, 200, JSON.stringify(reply.error));
  assert.equal(reply.data.type, "chat");
  assert.equal(reply.data.user_id, created.data.id);

  const recall = await user.POST("/memory/recall", { body: { text: "teacup crack" } });
  assert.equal(recall.response.status, 200);
  assert.equal(recall.data.vectors.collections.episodic[0].page_content, "My teacup has a crack");

  const forbidden = await user.GET("/users", {});
  assert.equal(forbidden.response.status, 403);
});
