// Names for every response type of ccat-api 0.12.1, so that JSON schemas can
// be generated from them (ts-json-schema-generator) and each response checked
// at run time. The exported names alias the client's own types; the
// anonymous return types are spelled out here and tsc proves below that they
// are exactly what the client's methods return.
import type * as ccat from "ccat-api";
import type { CancelablePromise, CatClient } from "ccat-api";

export type AuthPermission = ccat.AuthPermission;
export type CatMessage = ccat.CatMessage;
export type CollectionsList = ccat.CollectionsList;
export type DeleteResponse = ccat.DeleteResponse;
export type FileResponse = ccat.FileResponse;
export type JWTResponse = ccat.JWTResponse;
export type MemoryRecall = ccat.MemoryRecall;
export type Plugin = ccat.Plugin;
export type PluginsList = ccat.PluginsList;
export type Setting = ccat.Setting;
export type SettingsResponse = ccat.SettingsResponse;
export type SocketResponse = ccat.SocketResponse;
export type Status = ccat.Status;
export type UserResponse = ccat.UserResponse;
export type UserList = Array<ccat.UserResponse>;
export type WebResponse = ccat.WebResponse;

export type History = { history: Array<ccat.ConversationMessage> };
export type PluginSettings = ccat.Setting & { schema: Record<string, any> };
export type ToggleResponse = { info: string };
export type Mimetypes = { allowed?: Array<string> };
export type Permissions = Record<string, Array<ccat.AuthPermission>>;
export type MemoryUpload = Record<string, any>;

// tsc fails here if a spelled-out type drifts from the client's.
type API = NonNullable<CatClient["api"]>;
type Returned<F> = F extends (...args: any[]) => CancelablePromise<infer R> ? R : never;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const sameAsClient: [
  Same<History, Returned<API["memory"]["getConversationHistory"]>>,
  Same<PluginSettings, Returned<API["plugins"]["getPluginSettings"]>>,
  Same<ToggleResponse, Returned<API["plugins"]["togglePlugin"]>>,
  Same<Mimetypes, Returned<API["rabbitHole"]["getAllowedMimetypes"]>>,
  Same<Permissions, Returned<API["userAuth"]["getAvailablePermissions"]>>,
  Same<MemoryUpload, Returned<API["rabbitHole"]["uploadMemory"]>>,
  Same<UserList, Returned<API["users"]["readUsers"]>>,
] = [true, true, true, true, true, true, true];
