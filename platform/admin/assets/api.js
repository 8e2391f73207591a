// The panel's one way to call grin: the logged-in user's token on every
// call, a progress bar while calls are out, and every refusal turned into
// a sentence for a person (never a Go error chain or a schema's path).

const KEY = "grin-token";
let token = sessionStorage.getItem(KEY) || "";
let pending = 0;
const listeners = { unauthorized: [], unreachable: [] };

export function getToken() { return token; }
export function setToken(t) {
  token = t || "";
  if (token) sessionStorage.setItem(KEY, token); else sessionStorage.removeItem(KEY);
}
export function on(event, fn) { listeners[event].push(fn); }

// claims are the token's payload: sub (the user's id), username and the
// Cat permission dictionary at login.
export function claims() {
  try {
    return JSON.parse(decodeURIComponent(escape(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")))));
  } catch { return {}; }
}

function progress(delta) {
  pending += delta;
  const bar = document.getElementById("progress");
  if (bar) bar.hidden = pending === 0;
  document.body.toggleAttribute("aria-busy", pending > 0);
}

// api calls the server and resolves to {ok, status, data, headers, message};
// message is a sentence saying why a refused call was refused.
export async function api(method, path, body, isForm) {
  const headers = {};
  if (token) headers.Authorization = "Bearer " + token;
  let payload;
  if (body !== undefined) {
    if (isForm) payload = body;
    else { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  }
  progress(1);
  let resp;
  try {
    resp = await fetch(path, { method, headers, body: payload });
  } catch {
    progress(-1);
    const message = "The server cannot be reached. Check that grin is running, then try again.";
    listeners.unreachable.forEach((fn) => fn(message));
    return { ok: false, status: 0, data: {}, headers: new Headers(), message };
  }
  let text = "";
  try { text = await resp.text(); } catch { /* a cut answer reads as empty */ }
  progress(-1);
  let data = {};
  try { data = text ? JSON.parse(text) : {}; } catch { data = { detail: "" }; }
  const r = { ok: resp.ok, status: resp.status, data, headers: resp.headers, message: "" };
  if (!resp.ok) r.message = explain(resp.status, data);
  if (resp.status === 401 || (resp.status === 403 && data.detail === "Invalid Credentials")) {
    listeners.unauthorized.forEach((fn) => fn());
  }
  return r;
}

// schemaProblems reads the validator's "at '/name': what" parts of a
// plugin settings refusal into {field, message} pairs.
export function schemaProblems(detail) {
  const out = [];
  const re = /at '\/?([^']*)': ([^;]*)/g;
  let m;
  while ((m = re.exec(String(detail || "")))) out.push({ field: m[1].split("/")[0], message: humanize(m[2].trim()) });
  return out;
}

// explain turns an API problem into one or more sentences.
export function explain(status, data) {
  const fields = (data.errors || []).map(fieldError).filter(Boolean);
  const problems = schemaProblems(data.detail);
  if (problems.length) {
    return sentence("Refused") + " " + problems.map((p) => sentence((p.field ? p.field.replace(/_/g, " ") + ": " : "") + p.message)).join(" ");
  }
  let detail = clean(data.detail || "");
  if (/^validation failed$/i.test(detail) || /^unprocessable entity$/i.test(detail)) detail = "";
  if (!detail && !fields.length) detail = byStatus(status);
  // A field's problem the detail already says is said once.
  const flat = (x) => x.toLowerCase().replace(/[^a-z0-9]+/g, "");
  const extra = fields.filter((f) => !flat(detail).includes(flat(f.replace(/^[^:]*:\s*/, ""))));
  return [sentence(detail), ...extra].filter(Boolean).join(" ");
}

function byStatus(status) {
  switch (status) {
    case 400: return "The request was not understood";
    case 401: return "Your session has ended; log in again";
    case 403: return "You do not have the permission for this";
    case 404: return "It no longer exists; it may have been deleted by someone else";
    case 409: return "It conflicts with the current state";
    case 413: return "It is too large for this server";
    case 429: return "Too many attempts; wait a little, then try again";
    default: return status >= 500 ? "The server failed to do this; its log says why" : "Refused by the server";
  }
}

// fieldError says which field is wrong and how, in words.
export function fieldError(e) {
  const field = fieldName(e.location || "");
  const msg = humanize(e.message || "");
  if (!msg) return "";
  return sentence(field ? field + ": " + msg : msg);
}

export function fieldName(location) {
  return location.replace(/^(body|query|path|header)\.?/, "").replace(/\[(\d+)\]/g, " $1").replace(/\./g, " › ");
}

// humanize rewrites the validator's words ("expected length >= 2").
export function humanize(msg) {
  let m;
  msg = clean(msg);
  if ((m = msg.match(/^maximum: got \S+, want (\S+)$/))) return "must be " + m[1] + " or less";
  if ((m = msg.match(/^minimum: got \S+, want (\S+)$/))) return "must be " + m[1] + " or more";
  if ((m = msg.match(/^maxLength: got \S+, want (\S+)$/))) return "must be at most " + m[1] + " characters long";
  if ((m = msg.match(/^minLength: got \S+, want (\S+)$/))) return "must be at least " + m[1] + " characters long";
  if ((m = msg.match(/^value must be one of (.*)$/))) return "choose one of " + m[1];
  if ((m = msg.match(/^got (\w+), want (\w+)$/))) return "must be " + ({ integer: "a whole number", number: "a number", boolean: "yes or no", string: "text", object: "a set of fields", array: "a list" }[m[2]] || m[2]);
  if ((m = msg.match(/^additional properties? (.*) not allowed$/))) return m[1].replace(/'/g, "") + " is not a setting this accepts";
  if ((m = msg.match(/^missing propert(?:y|ies):? (.*)$/))) return m[1].replace(/'/g, "") + " is required";
  if ((m = msg.match(/^expected length >= (\d+)$/))) return "must be at least " + m[1] + " characters long";
  if ((m = msg.match(/^expected length <= (\d+)$/))) return "must be at most " + m[1] + " characters long";
  if ((m = msg.match(/^expected number >= (\S+)$/))) return "must be " + m[1] + " or more";
  if ((m = msg.match(/^expected number <= (\S+)$/))) return "must be " + m[1] + " or less";
  if ((m = msg.match(/^expected number > (\S+)$/))) return "must be more than " + m[1];
  if ((m = msg.match(/^expected number < (\S+)$/))) return "must be less than " + m[1];
  if ((m = msg.match(/^expected required property (\S+) to be present$/))) return m[1] + " is required";
  if ((m = msg.match(/^expected value to be one of "?(.*?)"?$/))) return "choose one of " + m[1].split(/,\s*/).join(", ");
  if ((m = msg.match(/^expected (integer|number|boolean|string|object|array)$/))) return "must be " + ({ integer: "a whole number", number: "a number", boolean: "yes or no", string: "text", object: "a set of fields", array: "a list" })[m[1]];
  if (/^unexpected property$/.test(msg)) return "is not a setting this accepts";
  if (/^expected string to match pattern/.test(msg)) return "is not in the expected form";
  if (/^expected string to be RFC 3339 date-time/.test(msg)) return "must be a date and time";
  if (/unexpected EOF/i.test(msg)) return "the upload was cut off before it ended; try again";
  return msg;
}

// clean removes what only a developer can use: schema locations
// (file:///tmp/…json#/…), "jsonschema:" prefixes, Go error chains past
// their first cause, and raw EOFs.
export function clean(s) {
  s = String(s || "");
  s = s.replace(/(file|https?):\/\/\S*?\.json\S*/g, "").replace(/jsonschema( validation failed)?( with)?:?/gi, "");
  s = s.replace(/\bat '(#?\/[^']*)'/g, (_, p) => (p === "" || p === "/" ? "" : "at " + p.replace(/^#?\//, "").replace(/\//g, " › ")));
  if (/^(unexpected )?EOF$/i.test(s.trim())) return "the data ended early; try again";
  s = s.replace(/unexpected EOF/gi, "the data ended early");
  return s.replace(/\s+/g, " ").replace(/\s([.,;:])/g, "$1").trim();
}

function sentence(s) {
  s = s.trim();
  if (!s) return "";
  s = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(s) ? s : s + ".";
}
