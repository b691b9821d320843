// The public HTTP API, nothing else: JSON calls, explain's server-sent events, and the API key, which is
// asked for when the server answers 401 and kept for the browser session (sessionStorage).

const KEY = "saliency-api-key";
// The page is served at <root>/ui/, so the API is one level up (also behind a proxy's path prefix).
const ROOT = new URL("../", document.baseURI);

export class ApiError extends Error {
  constructor(status, error) {
    super(error.field ? `${error.message} (${error.field})` : error.message);
    this.status = status;
    this.code = error.code;
    this.field = error.field;
  }
}

export const apiKey = () => sessionStorage.getItem(KEY);

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
  document.dispatchEvent(new CustomEvent("api-key"));
}

let asking = null; // one prompt for every request that got a 401 at the same time

export function askForKey(message) {
  asking ??= new Promise((resolve, reject) => {
    const dialog = document.getElementById("key-dialog");
    const input = document.getElementById("key-input");
    document.getElementById("key-message").textContent = message;
    input.value = "";
    dialog.addEventListener(
      "close",
      () => {
        asking = null;
        if (dialog.returnValue === "save" && input.value.trim()) {
          setApiKey(input.value.trim());
          resolve();
        } else {
          reject(new ApiError(401, { code: "unauthorized", message: "no API key given", field: null }));
        }
      },
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
  });
  return asking;
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body && body.error) return new ApiError(response.status, body.error);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(response.status, { code: "http_error", message: `HTTP ${response.status}`, field: null });
}

export async function request(path, { method = "GET", body, accept = "application/json" } = {}) {
  for (;;) {
    const headers = { accept };
    if (body !== undefined) headers["content-type"] = "application/json";
    const key = apiKey();
    if (key) headers["x-api-key"] = key;
    const init = { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
    const response = await fetch(new URL(path, ROOT), init);
    if (response.status === 401) {
      if (key) setApiKey(null);
      await askForKey(key ? "The server did not accept this API key; enter another." : "This server needs an API key.");
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

export const getJSON = async (path) => (await request(path)).json();

function parseEvent(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  return { name, data: data.length ? JSON.parse(data.join("\n")) : null };
}

// POST with `Accept: text/event-stream` (EventSource cannot POST) to a model's explain or sanity route:
// onProgress({done, total}) per progress event, then the result event's body. Errors before the stream
// starts come as plain JSON errors.
export async function streamed(model, route, body, onProgress) {
  const path = `v1/models/${encodeURIComponent(model)}/${route}`;
  const response = await request(path, { method: "POST", body, accept: "text/event-stream" });
  if (!(response.headers.get("content-type") || "").startsWith("text/event-stream")) return response.json();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the event stream ended without a result");
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event.name === "progress") onProgress(event.data);
      else if (event.name === "result") return event.data;
      else if (event.name === "error") throw new ApiError(0, event.data.error); // status already sent: 200
    }
  }
}
