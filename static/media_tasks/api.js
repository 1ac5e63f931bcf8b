/* The uploads API (DESIGN.md, "JSON API"): requests with the session cookie and the CSRF token.
 * A 401 means the session is over, whichever request meets it. Files go up by XHR, the one
 * request that reports how many bytes are sent (fetch does not). */

import { API, PAGE_CSRF } from "./config.js";
import { sessionEnded } from "./status.js";

export function csrfToken() {
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return cookie ? decodeURIComponent(cookie.slice("csrftoken=".length)) : PAGE_CSRF;
}

/** The API's URL of upload `id`. */
export function uploadUrl(id) {
  return `${API}${id}/`;
}

/** fetch() for the API; rejects on a 401, after telling the page. */
export async function api(url, options = {}) {
  const response = await fetch(url, {
    credentials: "same-origin",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    ...options,
  });
  if (response.status === 401) {
    sessionEnded();
    throw new Error("logged out");
  }
  return response;
}

/** POST `file` as a new upload (to `url`: the API's, which another page names itself).
 * `progress(percent)` as its bytes go up; then one of `load(status, body)` (body: the parsed
 * JSON, or null), `error()` or `abort()`. Returns the request, which `abort()` cancels. */
export function sendFile(file, { url = API, progress, load, error, abort }) {
  const form = new FormData();
  form.append("image", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", url);
  xhr.setRequestHeader("X-CSRFToken", csrfToken());
  xhr.setRequestHeader("Accept", "application/json");
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) progress((event.loaded / event.total) * 100);
  });
  xhr.addEventListener("load", () => {
    let body = null;
    try {
      body = JSON.parse(xhr.responseText);
    } catch {
      body = null;
    }
    if (xhr.status === 401) sessionEnded();
    load(xhr.status, body);
  });
  xhr.addEventListener("error", () => error());
  xhr.addEventListener("abort", () => abort());
  xhr.send(form);
  return xhr;
}
