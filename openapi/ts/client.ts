// grin's TypeScript client: createGrin returns an openapi-fetch client
// typed by schema.d.ts, which openapi-typescript generates from
// openapi/openapi.yaml (npm run generate, or go generate ./openapi/...).
import createClient from "openapi-fetch";
import type { paths, components } from "./schema";

export type User = components["schemas"]["User"];
export type Reply = components["schemas"]["Reply"];

export function createGrin(baseUrl: string, token?: string) {
  return createClient<paths>({
    baseUrl,
    headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
}

// A typed walk through the API; `npm run typecheck` proves the generated
// types accept it, the Node test runs the same calls for real.
export async function example(baseUrl: string, password: string): Promise<Reply | undefined> {
  const anon = createGrin(baseUrl);
  const { data: token } = await anon.POST("/auth/token", { body: { username: "admin", password } });
  if (!token) return undefined;
  const grin = createGrin(baseUrl, token.access_token);
  const { data: user } = await grin.POST("/users", {
    body: { username: "ts-user", password: "ts-password", permissions: { CONVERSATION: ["WRITE"], MEMORY: ["READ"] } },
  });
  const users: User[] = (await grin.GET("/users", { params: { query: { limit: 10 } } })).data ?? [];
  void users;
  void user;
  const { data: reply } = await grin.POST("/message", { body: { text: "hello" } });
  return reply;
}
