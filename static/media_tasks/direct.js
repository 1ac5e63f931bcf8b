/* Files go straight to the bucket on S3 (media_tasks/direct.py): the API signs a POST form for
 * one object, the browser posts the file there (the bucket enforces the type and the size),
 * then tells the API, which checks the object's first bytes and makes it an upload. The bytes
 * never pass through the site. A cut connection sends the file again from its start (the
 * card's Retry): S3's form upload cannot resume. */

import { DIRECT_API, DIRECT_COMPLETE_API } from "./config.js";
import { api } from "./api.js";

async function json(response) {
  return response.json().catch(() => null);
}

/** Post `form` to `url` by XHR, the one request that reports how many bytes went up:
 * resolves with the status (0 for a network error), rejects if aborted. */
function postForm(url, form, progress, started) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => resolve(xhr.status));
    xhr.addEventListener("error", () => resolve(0));
    xhr.addEventListener("abort", () => reject(new Error("aborted")));
    started(xhr);
    xhr.send(form);
  });
}

/** Send `file` to the bucket, with the same callbacks as sendResumable (resumable.js):
 * `progress(bytesSent, bytesTotal)`, then `load(status, body)` with the API's answer (202
 * `{uploads: [...]}`, or its error), or `error(message)` if the bucket could not be reached.
 * Returns `{abort()}`. */
export function sendDirect(file, { progress, load, error }) {
  let request = null;
  let aborted = false;
  const run = async () => {
    const start = await api(DIRECT_API, {
      method: "POST",
      body: JSON.stringify({ name: file.name, size: file.size, type: file.type }),
    });
    const signed = await json(start);
    if (start.status !== 201 || !signed) {
      load(start.status, signed);
      return;
    }
    const form = new FormData();
    for (const [name, value] of Object.entries(signed.fields)) form.append(name, value);
    // S3 takes the file as the form's last field.
    form.append("file", file, file.name);
    const status = await postForm(signed.url, form, progress, (xhr) => {
      request = xhr;
    });
    if (aborted) return;
    if (status < 200 || status >= 300) {
      if (status === 0) error("the storage could not be reached");
      else load(status >= 500 ? status : 400, { error: `${file.name}: the storage refused it` });
      return;
    }
    const done = await api(DIRECT_COMPLETE_API, {
      method: "POST",
      body: JSON.stringify({ token: signed.token }),
    });
    load(done.status, await json(done));
  };
  run().catch((failure) => {
    if (!aborted) error(failure.message);
  });
  return {
    abort: () => {
      aborted = true;
      if (request) request.abort();
    },
  };
}
